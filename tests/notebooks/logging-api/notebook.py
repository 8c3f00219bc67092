# %% [markdown]
# Logging API (the reference's track-and-monitor-experiments/logging-api)

# %%
from azureml.core import Experiment, Workspace
from azureml.telemetry import set_diagnostics_collection

set_diagnostics_collection(send_diagnostics=True)
ws = Workspace.from_config()
exp = Experiment(workspace=ws, name="logging-api-test")

# %%
run = exp.start_logging()
run.log(name="scalar", value=1.5, description="a scalar")
run.log_list(name="list", value=[1, 2, 3])
run.log_row(name="row", x=1, y=2)
run.log_table(name="table", value={"a": [1, 2], "b": [3, 4]})
run.tag("stage", "demo")
with open("notes.txt", "w") as fh:
    fh.write("notes")
run.upload_file(name="notes.txt", path_or_stream="notes.txt")
run.complete()

# %%
print(run.get_status(), run.get_metrics())
assert run.get_status() == "Completed"
assert run.get_metrics()["list"] == [1, 2, 3]
assert "notes.txt" in run.get_file_names()
assert run.get_tags()["stage"] == "demo"

# %%
runs = list(exp.get_runs())
assert runs[0].id == run.id
print(exp.id, exp.name)
