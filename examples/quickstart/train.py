"""A tiny training script: ridge regression by gradient descent, standard library only.

It runs unchanged by hand (`python train.py`, an offline run that prints what it would log) and
under ferry (`ferry submit train.py -- --alpha 0.5`), where metrics and outputs are kept.
"""

import argparse
import json
import os
import random

try:
    from ferry import Run
except ImportError:  # scripts written for the reference may keep its import
    from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=0.1, help="L2 regularisation strength")
parser.add_argument("--epochs", type=int, default=20)
args = parser.parse_args()

run = Run.get_context()
run.log("alpha", args.alpha)

random.seed(0)
xs = [random.uniform(-1, 1) for _ in range(200)]
ys = [3.0 * x + 0.5 + random.gauss(0, 0.1) for x in xs]

w, b, lr = 0.0, 0.0, 0.1
for epoch in range(args.epochs):
    gw = sum((w * x + b - y) * x for x, y in zip(xs, ys)) / len(xs) + args.alpha * w
    gb = sum(w * x + b - y for x, y in zip(xs, ys)) / len(xs)
    w, b = w - lr * gw, b - lr * gb
    mse = sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    run.log("mse", mse, step=epoch)
    print(f"epoch {epoch:2d}  mse {mse:.4f}")

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as fh:
    json.dump({"w": w, "b": b, "alpha": args.alpha}, fh)
run.tag("model", "ridge-gd")
print("model saved to outputs/model.json")
