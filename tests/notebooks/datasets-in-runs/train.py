import argparse
import glob
import os

import joblib
import pandas as pd
from sklearn.linear_model import LinearRegression

from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data-mount", type=str)
parser.add_argument("--data-copy", type=str)
parser.add_argument("--table", type=str)
parser.add_argument("--prepared", type=str)
args = parser.parse_args()

run = Run.get_context()
mounted = run.input_datasets["diabetes"]
print("mounted at", mounted, "downloaded to", run.input_datasets["diabetes_copy"])
assert os.path.realpath(mounted) == os.path.realpath(args.data_mount), (mounted, args.data_mount)
assert os.path.realpath(run.input_datasets["diabetes_copy"]) == os.path.realpath(args.data_copy)

files = sorted(glob.glob(os.path.join(args.data_mount, "**", "*.csv"), recursive=True))
copies = sorted(glob.glob(os.path.join(args.data_copy, "**", "*.csv"), recursive=True))
assert [os.path.basename(f) for f in files] == ["part1.csv", "part2.csv"], files
assert [os.path.basename(f) for f in copies] == ["part1.csv", "part2.csv"], copies
df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)

table = run.input_datasets["diabetes_table"].to_pandas_dataframe()
assert len(table) == len(df), (len(table), len(df))

os.makedirs(args.prepared, exist_ok=True)
df.to_csv(os.path.join(args.prepared, "prepared.csv"), index=False)

model = LinearRegression().fit(df[["age", "bmi"]], df["target"])
os.makedirs("outputs", exist_ok=True)
joblib.dump(value=model, filename="outputs/model.pkl")
run.log("rows", len(df))
