import argparse
import os

import joblib
import pandas as pd

from azureml.core import Run
from azureml.core.model import Model

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=str)
args = parser.parse_args()

model_path = Model.get_model_path("diabetes-model")
print("model at", model_path)
model = joblib.load(model_path)

# a dataset of a single file comes in as the file itself, as the reference's does
assert os.path.isfile(args.data) and os.path.basename(args.data) == "prepared.csv", args.data
df = pd.read_csv(args.data)
predicted = model.predict(df[["age", "bmi"]])

run = Run.get_context()
run.log("scored", len(df))
run.log("mae", float(abs(predicted - df["target"]).mean()))
