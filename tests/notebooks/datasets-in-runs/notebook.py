# %% [markdown]
# Datasets in runs: named inputs (mount and download), a tabular dataset, an output dataset, and a
# model trained on them, scored by a second job (the reference's train-on-remote-vm,
# how-to-use-azureml/work-with-data and the AutoML notebooks' idioms), unchanged.

# %%
import os

import pandas as pd

from azureml.core import Dataset, Datastore, Environment, Experiment, ScriptRunConfig, Workspace
from azureml.core.dataset import Dataset  # noqa: F811  (both paths, as the reference has them)
from azureml.core.model import Model
from azureml.data import OutputFileDatasetConfig
from azureml.data.datapath import DataPath

ws = Workspace.from_config()
exp = Experiment(workspace=ws, name="datasets-in-runs")

# %% [markdown]
# Upload a small diabetes-like table in two files to the default datastore

# %%
os.makedirs("diabetes", exist_ok=True)
rows = [
    (age, bmi, round(0.5 * age + 3.0 * bmi + 1.0, 3))
    for age in range(20, 60)
    for bmi in (20, 25, 30)
]
frame = pd.DataFrame(rows, columns=["age", "bmi", "target"])
frame.iloc[:60].to_csv("diabetes/part1.csv", index=False)
frame.iloc[60:].to_csv("diabetes/part2.csv", index=False)

ds = ws.get_default_datastore()
ds.upload_files(
    files=["./diabetes/part1.csv", "./diabetes/part2.csv"],
    target_path="diabetes",
    overwrite=True,
    show_progress=True,
)
assert Datastore.get(ws, "workspaceblobstore").name == ds.name == "workspaceblobstore"
assert "workspaceblobstore" in ws.datastores

# %% [markdown]
# A FileDataset and a TabularDataset over the same files

# %%
dataset = Dataset.File.from_files(path=[(ds, "diabetes/")])
dataset = dataset.register(
    workspace=ws, name="diabetes-files", description="diabetes csv files", create_new_version=True
)
print(dataset.name, dataset.version, dataset.to_path())
assert sorted(dataset.to_path()) == ["/part1.csv", "/part2.csv"]

one_file = Dataset.File.from_files(path=DataPath(ds, "diabetes/part1.csv"))
assert one_file.to_path() == ["/part1.csv"], one_file.to_path()

tabular = Dataset.Tabular.from_delimited_files(path=(ds, "diabetes/*.csv"))
df = tabular.to_pandas_dataframe()
print(df.shape)
assert df.shape == (120, 3) and list(df.columns) == ["age", "bmi", "target"]
assert len(tabular.take(5).to_pandas_dataframe()) == 5
train, test = tabular.random_split(percentage=0.8, seed=123)
n_train, n_test = len(train.to_pandas_dataframe()), len(test.to_pandas_dataframe())
print(n_train, n_test)
assert n_train + n_test == 120 and 80 <= n_train <= 110
tabular.register(
    workspace=ws,
    name="diabetes table",
    description="diabetes data",
    tags={"format": "CSV"},
    create_new_version=True,
)
tabular = ws.datasets.get("diabetes table")  # the labs' spelling: a name with a space
print(tabular.name, tabular.version, tabular.tags)

# %% [markdown]
# Train: the file dataset mounted and downloaded, the tabular one direct, and an output dataset

# %%
prepared = OutputFileDatasetConfig(
    name="prepared", destination=(ds, "prepared/{run-id}")
).register_on_complete(name="diabetes-prepared", description="rows the training run read")

env = Environment.get(workspace=ws, name="ferry-sklearn")

args = [
    "--data-mount", dataset.as_named_input("diabetes").as_mount(),
    "--data-copy", dataset.as_named_input("diabetes_copy").as_download(),
    "--table", tabular.as_named_input("diabetes_table"),
    "--prepared", prepared,
]  # fmt: skip
src = ScriptRunConfig(source_directory=".", script="train.py", arguments=args, environment=env)
run = exp.submit(config=src)
run.wait_for_completion(show_output=True)
print(run.get_metrics())
assert run.get_metrics()["rows"] == 120

# %% [markdown]
# The output dataset is readable after the run, at its destination and through the run's details

# %%
prepared_ds = Dataset.File.from_files(path=(ds, f"prepared/{run.id}/**"))
print(prepared_ds.to_path())
assert prepared_ds.to_path() == ["/prepared.csv"]
details = run.get_details()
print([d["dataset"].name for d in details["inputDatasets"]], details["outputDatasets"])
assert {d["consumptionDetails"]["inputName"] for d in details["inputDatasets"]} >= {
    "diabetes",
    "diabetes_copy",
}
assert [d["outputDetails"]["outputName"] for d in details["outputDatasets"]] == ["prepared"]
registered = Dataset.get_by_name(ws, "diabetes-prepared")
print(registered.name, registered.version, registered.to_path())
assert registered.to_path() == ["/prepared.csv"]

# %% [markdown]
# Register the model with the dataset it was trained on, and find it again

# %%
model = run.register_model(
    model_name="diabetes-model",
    model_path="outputs/model.pkl",
    tags={"area": "diabetes"},
    datasets=[("training data", dataset)],
)
print(model.name, model.id, model.version, sep="\t")
models = Model.list(ws, name="diabetes-model")
assert [m.version for m in models] == [1]
assert [d.name for d in models[0].datasets["training data"]] == ["diabetes-files"]
assert Model(ws, "diabetes-model").run_id == run.id

# %% [markdown]
# Score with a second job: Model.get_model_path inside the script, the prepared data downloaded

# %%
src = ScriptRunConfig(
    source_directory=".",
    script="score.py",
    arguments=[
        "--data",
        prepared_ds.as_named_input("prepared").as_download(),
        "--part1",
        one_file.as_named_input("part1").as_mount(),
    ],
    environment=env,
)
scoring = exp.submit(src)
scoring.wait_for_completion(show_output=True)
print(scoring.get_metrics())
assert scoring.get_metrics()["scored"] == 120
assert scoring.get_metrics()["mae"] < 0.01
