# %% [markdown]
# Train on Azure ML Compute (the reference's training/train-on-amlcompute), unchanged

# %%
import azureml.core
from azureml.core import Environment, Experiment, ScriptRunConfig, Workspace
from azureml.core.compute import AmlCompute, ComputeTarget
from azureml.core.compute_target import ComputeTargetException
from azureml.core.conda_dependencies import CondaDependencies

print("SDK version:", azureml.core.VERSION)
ws = Workspace.from_config()

# %%
cpu_cluster_name = "cpu-cluster"
try:
    cpu_cluster = ComputeTarget(workspace=ws, name=cpu_cluster_name)
    print("Found existing cluster, use it.")
except ComputeTargetException:
    compute_config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", max_nodes=1, idle_seconds_before_scaledown=30
    )
    cpu_cluster = ComputeTarget.create(ws, cpu_cluster_name, compute_config)
cpu_cluster.wait_for_completion(show_output=True)

# %%
myenv = Environment("myenv")
myenv.docker.enabled = True  # set by habit in the reference's samples
myenv.python.conda_dependencies = CondaDependencies.create(conda_packages=["pip"])

# %%
src = ScriptRunConfig(
    source_directory=".", script="train.py", compute_target=cpu_cluster, environment=myenv
)
run = Experiment(workspace=ws, name="train-on-amlcompute").submit(src)
run.wait_for_completion(show_output=True)
print(run.get_metrics())
assert run.get_metrics()["alpha"] == 0.5

# %%
cpu_cluster.delete()
