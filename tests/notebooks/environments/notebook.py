# %% [markdown]
# Using environments (the reference's how-to-use-azureml/training/using-environments)

# %%
from azureml.core import Environment, Experiment, ScriptRunConfig, Workspace
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.runconfig import RunConfiguration

ws = Workspace.from_config()

# %%
envs = Environment.list(workspace=ws)
for env in envs:
    if env.startswith("AzureML"):
        print("Name", env)
assert "AzureML-Minimal" in envs

# %%
myenv = Environment(name="myenv")
conda_dep = CondaDependencies()
conda_dep.add_pip_package("six==1.17.0")
myenv.python.conda_dependencies = conda_dep
myenv.register(workspace=ws)

# %%
restored = Environment.get(workspace=ws, name="myenv")
print(restored.name, restored.version)
assert restored.python.conda_dependencies.pip_packages == ["six==1.17.0"]

# %%
src = ScriptRunConfig(source_directory=".", script="check.py", environment=restored)
run = Experiment(ws, "using-environments").submit(src)
run.wait_for_completion(show_output=True)
assert run.get_metrics()["six"] == "1.17.0"

# %%
rc = RunConfiguration()  # the reference's default environment: nothing declared, nothing built
assert rc.environment.python.user_managed_dependencies is False
