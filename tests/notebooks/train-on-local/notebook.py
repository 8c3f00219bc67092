# %% [markdown]
# Train on the local computer (the reference's how-to-use-azureml/training/train-on-local)

# %%
import azureml.core
from azureml.core import Environment, Experiment, ScriptRunConfig, Workspace

print("SDK version:", azureml.core.VERSION)

# %%
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# %%
experiment_name = "train-on-local"
exp = Experiment(workspace=ws, name=experiment_name)

# %%
user_managed_env = Environment("user-managed-env")
user_managed_env.python.user_managed_dependencies = True
src = ScriptRunConfig(source_directory="./", script="train.py", environment=user_managed_env)
run = exp.submit(src)

# %%
from azureml.widgets import RunDetails

RunDetails(run).show()

# %%
run.wait_for_completion(show_output=True)

# %%
metrics = run.get_metrics()
print(metrics)
assert metrics["alpha"] == 0.03 and len(metrics["mse"]) == 10, metrics
assert run.get_status() == "Completed"

# %%
print(run.get_file_names())
assert "outputs/model.txt" in run.get_file_names()
run.download_file(name="outputs/model.txt", output_file_path="./model.txt")
print(open("./model.txt").read())
