import argparse
import glob
import os

import joblib
import pandas as pd

from azureml.core import Run
from azureml.core.model import Model

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=str)
parser.add_argument("--part1", type=str)
args = parser.parse_args()

model_path = Model.get_model_path("diabetes-model")
print("model at", model_path)
model = joblib.load(model_path)

# a folder (or a pattern) comes in as the folder, even when it holds one file
(path,) = glob.glob(os.path.join(args.data, "**", "prepared.csv"), recursive=True)
df = pd.read_csv(path)
# a dataset whose path names one file comes in as that file
assert os.path.isfile(args.part1) and os.path.basename(args.part1) == "part1.csv", args.part1
assert len(pd.read_csv(args.part1)) == 60
predicted = model.predict(df[["age", "bmi"]])

run = Run.get_context()
run.log("scored", len(df))
run.log("mae", float(abs(predicted - df["target"]).mean()))
