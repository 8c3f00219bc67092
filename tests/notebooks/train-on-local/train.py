import os

from azureml.core.run import Run

run = Run.get_context()
alpha = 0.03
run.log("alpha", alpha)
w = 0.0
for epoch in range(10):
    w += alpha * (2.0 - w)
    run.log("mse", (2.0 - w) ** 2)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.txt", "w") as fh:
    fh.write(f"w={w}\n")
print("trained, w =", w)
