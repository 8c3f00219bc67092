from azureml.core import Run

run = Run.get_context()
run.log("alpha", 0.5)
print("trained on", run.id)
