# %% [markdown]
# Tutorial: train an image classification model (the reference's
# tutorials/image-classification-mnist-data, part 1 as of 2019-2020 with the model download of
# part 2), unchanged but for small synthetic MNIST-like files made here (no network).

# %%
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt  # noqa: F401  (the tutorial plots samples)

import azureml.core
from azureml.core import Workspace

# check core SDK version number
print("Azure ML SDK Version: ", azureml.core.VERSION)

# %%
# load workspace configuration from the config.json file in the current folder.
ws = Workspace.from_config()
print(ws.name, ws.location, ws.resource_group, sep="\t")

# %%
experiment_name = "sklearn-mnist"

from azureml.core import Experiment

exp = Experiment(workspace=ws, name=experiment_name)

# %% [markdown]
# Explore data: the tutorial downloads MNIST; here a tiny MNIST-like set in the same idx/gz files.

# %%
import gzip
import os
import struct

data_folder = os.path.join(os.getcwd(), "data")
os.makedirs(data_folder, exist_ok=True)


def write_idx(path, images, labels_path, labels):
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">IIII", 2051, len(images), 28, 28))
        fh.write(images.astype(np.uint8).tobytes())
    with gzip.open(labels_path, "wb") as fh:
        fh.write(struct.pack(">II", 2049, len(labels)))
        fh.write(labels.astype(np.uint8).tobytes())


rng = np.random.default_rng(0)


def make(n):
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 40, (n, 28 * 28))
    for i, label in enumerate(labels):  # a bright stripe whose place is the digit
        images[i, label * 78 : label * 78 + 78] = 255
    return images, labels


X, y = make(600)
write_idx(
    os.path.join(data_folder, "train-images-idx3-ubyte.gz"),
    X,
    os.path.join(data_folder, "train-labels-idx1-ubyte.gz"),
    y,
)
X, y = make(100)
write_idx(
    os.path.join(data_folder, "test-images-idx3-ubyte.gz"),
    X,
    os.path.join(data_folder, "test-labels-idx1-ubyte.gz"),
    y,
)
print(sorted(os.listdir(data_folder)))

# %% [markdown]
# Upload data to the cloud (the 2019 tutorial)

# %%
ds = ws.get_default_datastore()
print(ds.datastore_type, ds.account_name, ds.container_name)

ds.upload(src_dir=data_folder, target_path="mnist", overwrite=True, show_progress=True)

# %% [markdown]
# Create a FileDataset and register it

# %%
from azureml.core import Dataset

mnist_file_dataset = Dataset.File.from_files(path=ds.path("mnist/**"))
print(mnist_file_dataset.to_path())
assert sorted(mnist_file_dataset.to_path()) == [
    "/test-images-idx3-ubyte.gz",
    "/test-labels-idx1-ubyte.gz",
    "/train-images-idx3-ubyte.gz",
    "/train-labels-idx1-ubyte.gz",
], mnist_file_dataset.to_path()

# the same files through the tuple form
same = Dataset.File.from_files(path=[(ds, "mnist/**")])
assert sorted(same.to_path()) == sorted(mnist_file_dataset.to_path())

mnist_file_dataset = mnist_file_dataset.register(
    workspace=ws,
    name="mnist-dataset",
    description="training and test dataset",
    create_new_version=True,
)
print(mnist_file_dataset.name, mnist_file_dataset.version)

# %%
mnist_file_dataset = Dataset.get_by_name(ws, "mnist-dataset")
print(mnist_file_dataset.name, mnist_file_dataset.version, mnist_file_dataset.description)
assert mnist_file_dataset.version == 1

# %% [markdown]
# Create the training script's environment

# %%
from azureml.core.environment import Environment

# the tutorial declares scikit-learn; the curated environment that ferry tests holds it (cached)
env = Environment.get(workspace=ws, name="ferry-sklearn")
env = env.clone("tutorial-env")
env.register(workspace=ws)

# %% [markdown]
# Configure the training job

# %%
from azureml.core import ScriptRunConfig

script_folder = os.path.join(os.getcwd(), "sklearn-mnist")
os.makedirs(script_folder, exist_ok=True)
import shutil

shutil.copy("train.py", script_folder)
shutil.copy("utils.py", script_folder)

args = ["--data-folder", mnist_file_dataset.as_mount(), "--regularization", 0.5]

src = ScriptRunConfig(
    source_directory=script_folder,
    script="train.py",
    arguments=args,
    compute_target="local",
    environment=env,
)

# %%
run = exp.submit(config=src)
run  # noqa: B018  (the notebook shows the run)

# %%
# specify show_output to True for a verbose log
run.wait_for_completion(show_output=False)

# %%
print(run.get_metrics())
assert run.get_metrics()["regularization rate"] == 0.5
assert run.get_metrics()["accuracy"] > 0.9, run.get_metrics()

# %%
print(run.get_file_names())
assert "outputs/sklearn_mnist_model.pkl" in run.get_file_names()

# %%
# register model
model = run.register_model(model_name="sklearn_mnist", model_path="outputs/sklearn_mnist_model.pkl")
print(model.name, model.id, model.version, sep="\t")
assert (model.name, model.id, model.version) == ("sklearn_mnist", "sklearn_mnist:1", 1)

# %% [markdown]
# Part 2: download the model and test it locally

# %%
from azureml.core import Workspace
from azureml.core.model import Model
import os

ws = Workspace.from_config()
model = Model(ws, "sklearn_mnist")

model.download(target_dir=os.getcwd(), exist_ok=True)

# verify the downloaded model file
file_path = os.path.join(os.getcwd(), "sklearn_mnist_model.pkl")

os.stat(file_path)

# %%
from utils import load_data
import joblib

X_test = load_data(os.path.join(data_folder, "test-images-idx3-ubyte.gz"), False) / 255.0
y_test = load_data(os.path.join(data_folder, "test-labels-idx1-ubyte.gz"), True).reshape(-1)

clf = joblib.load(os.path.join(os.getcwd(), "sklearn_mnist_model.pkl"))
y_hat = clf.predict(X_test)
print(np.average(y_hat == y_test))
assert np.average(y_hat == y_test) > 0.9
