# %% [markdown]
# Control a run from the driver: fail(), logs from the driver, details

# %%
from azureml.core import Experiment, ScriptRunConfig, Workspace
from azureml.core.compute_target import ComputeTargetException
from azureml.core.compute import ComputeTarget

ws = Workspace.from_config()
try:
    ComputeTarget(workspace=ws, name="no-such-cluster")
    raise AssertionError("a missing compute target must raise")
except ComputeTargetException:
    print("not found, as expected")

# %%
run = Experiment(ws, "driver-control").submit(
    ScriptRunConfig(source_directory=".", script="long.py", compute_target="local")
)
import time

while run.get_status() != "Running":
    time.sleep(0.1)
run.fail(error_details="stopped from the notebook")

# %%
details = run.wait_for_completion(raise_on_error=False)
print(details["status"], details["error"])
assert details["status"] == "Failed"
run.log("summary", 42)  # logging from the driver after the run, as the reference allows
assert run.get_metrics()["summary"] == 42
assert run.type == "azureml.scriptrun"
