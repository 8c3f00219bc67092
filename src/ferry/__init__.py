"""ferry: run training code anywhere, unchanged, and keep everything about each run.

Shaped like the Azure ML SDK v1 so that driver code ports by changing imports::

    from ferry import Workspace, Experiment, ScriptRunConfig
    ws = Workspace.from_config()
    run = Experiment(ws, "diabetes").submit(ScriptRunConfig("src", "train.py"))
    run.wait_for_completion(show_output=True)
"""

from __future__ import annotations

from ferry._lazy import lazy_names

TYPE_CHECKING = False  # not typing's: importing typing costs ~10 ms of every ferry command

__version__ = "0.1.0"
#: the reference's ``azureml.core.VERSION``: this ferry's version
VERSION = __version__

__all__ = [
    "VERSION",
    "ActivityFailedException",
    "AmlCompute",
    "BanditPolicy",
    "BayesianParameterSampling",
    "ComputeTarget",
    "ComputeTargetException",
    "CondaDependencies",
    "ConfigError",
    "ContainerRegistry",
    "DataPath",
    "DataReference",
    "DataReferenceConfiguration",
    "DataType",
    "Dataset",
    "DatasetConsumptionConfig",
    "DatasetNotFound",
    "Datastore",
    "DatastoreNotFound",
    "DockerBuildContext",
    "DockerConfiguration",
    "Environment",
    "Estimator",
    "Experiment",
    "FerryError",
    "FileDataset",
    "Gloo",
    "GridParameterSampling",
    "HDInsightCompute",
    "HistoryConfiguration",
    "HyperDriveConfig",
    "HyperDriveRun",
    "InteractiveRun",
    "MedianStoppingPolicy",
    "Model",
    "ModelNotFoundException",
    "Mpi",
    "MpiConfiguration",
    "Nccl",
    "NoTerminationPolicy",
    "OutputFileDatasetConfig",
    "ParameterServer",
    "PrimaryMetricGoal",
    "PyTorch",
    "PyTorchConfiguration",
    "RandomParameterSampling",
    "RayCluster",
    "RemoteCompute",
    "ResourceConfiguration",
    "Run",
    "RunConfiguration",
    "RunDetails",
    "RunFailed",
    "RunStatus",
    "SKLearn",
    "ScriptRunConfig",
    "SparkCompute",
    "TabularDataset",
    "TensorFlow",
    "TensorflowConfiguration",
    "TruncationSelectionPolicy",
    "UserErrorException",
    "ViewType",
    "Workspace",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "set_diagnostics_collection",
    "uniform",
]

# Imported lazily: `from ferry import Run` inside a job must stay cheap.
_LAZY = {
    "ComputeTarget": "ferry.compute",
    "RemoteCompute": "ferry.compute",  # configuration builders: no asyncssh, pyspark or ray
    "SparkCompute": "ferry.compute",
    "RayCluster": "ferry.compute",
    "AmlCompute": "ferry.compute_aml",  # a managed Ray cluster (Ray is imported when it is used)
    "HDInsightCompute": "ferry.compute_hdinsight",
    "CondaDependencies": "ferry.environment",
    "ContainerRegistry": "ferry.environment",
    "DockerBuildContext": "ferry.environment",
    "Environment": "ferry.environment",
    "Experiment": "ferry.experiment",
    "Estimator": "ferry.estimator",
    "HyperDriveConfig": "ferry.hyperdrive",
    "HyperDriveRun": "ferry.hyperdrive",
    "RandomParameterSampling": "ferry.hyperdrive",
    "GridParameterSampling": "ferry.hyperdrive",
    "BayesianParameterSampling": "ferry.hyperdrive",
    "BanditPolicy": "ferry.hyperdrive",
    "MedianStoppingPolicy": "ferry.hyperdrive",
    "TruncationSelectionPolicy": "ferry.hyperdrive",
    "NoTerminationPolicy": "ferry.hyperdrive",
    "PrimaryMetricGoal": "ferry.hyperdrive",
    "choice": "ferry.hyperdrive",
    "randint": "ferry.hyperdrive",
    "uniform": "ferry.hyperdrive",
    "quniform": "ferry.hyperdrive",
    "loguniform": "ferry.hyperdrive",
    "qloguniform": "ferry.hyperdrive",
    "normal": "ferry.hyperdrive",
    "qnormal": "ferry.hyperdrive",
    "lognormal": "ferry.hyperdrive",
    "qlognormal": "ferry.hyperdrive",
    "SKLearn": "ferry.estimator",
    "PyTorch": "ferry.estimator",
    "TensorFlow": "ferry.estimator",
    "Mpi": "ferry.estimator",
    "Gloo": "ferry.estimator",
    "Nccl": "ferry.estimator",
    "ParameterServer": "ferry.estimator",
    "ViewType": "ferry.experiment",
    "InteractiveRun": "ferry.interactive",
    "RunDetails": "ferry.widgets",
    "set_diagnostics_collection": "ferry.telemetry",
    "UserErrorException": "ferry.telemetry",
    "Run": "ferry.run",
    "RunConfiguration": "ferry.runconfig",
    "DockerConfiguration": "ferry.runconfig",
    "HistoryConfiguration": "ferry.runconfig",
    "MpiConfiguration": "ferry.runconfig",
    "PyTorchConfiguration": "ferry.runconfig",
    "TensorflowConfiguration": "ferry.runconfig",
    "ScriptRunConfig": "ferry.script_run_config",
    "Workspace": "ferry.workspace",
    "RunStatus": "ferry.status",
    "FerryError": "ferry.errors",
    "ConfigError": "ferry.errors",
    "RunFailed": "ferry.errors",
    "ActivityFailedException": "ferry.errors",
    "ComputeTargetException": "ferry.errors",
    "Dataset": "ferry.data",
    "DataType": "ferry.data",
    "FileDataset": "ferry.data",
    "TabularDataset": "ferry.data",
    "DatasetConsumptionConfig": "ferry.data",
    "OutputFileDatasetConfig": "ferry.data",
    "Datastore": "ferry.data",
    "DataPath": "ferry.data",
    "DataReference": "ferry.data",
    "DataReferenceConfiguration": "ferry.data",
    "DatasetNotFound": "ferry.data",
    "DatastoreNotFound": "ferry.data",
    "Model": "ferry.model",
    "ResourceConfiguration": "ferry.model",
    "ModelNotFoundException": "ferry.model",
}

if TYPE_CHECKING:
    from ferry.compute import ComputeTarget, RayCluster, RemoteCompute, SparkCompute
    from ferry.compute_aml import AmlCompute
    from ferry.compute_hdinsight import HDInsightCompute
    from ferry.data import (
        DataPath,
        DataReference,
        DataReferenceConfiguration,
        Dataset,
        DatasetConsumptionConfig,
        DatasetNotFound,
        Datastore,
        DatastoreNotFound,
        DataType,
        FileDataset,
        OutputFileDatasetConfig,
        TabularDataset,
    )
    from ferry.environment import (
        CondaDependencies,
        ContainerRegistry,
        DockerBuildContext,
        Environment,
    )
    from ferry.errors import (
        ActivityFailedException,
        ComputeTargetException,
        ConfigError,
        FerryError,
        RunFailed,
    )
    from ferry.estimator import (
        Estimator,
        Gloo,
        Mpi,
        Nccl,
        ParameterServer,
        PyTorch,
        SKLearn,
        TensorFlow,
    )
    from ferry.experiment import Experiment, ViewType
    from ferry.hyperdrive import (
        BanditPolicy,
        BayesianParameterSampling,
        GridParameterSampling,
        HyperDriveConfig,
        HyperDriveRun,
        MedianStoppingPolicy,
        NoTerminationPolicy,
        PrimaryMetricGoal,
        RandomParameterSampling,
        TruncationSelectionPolicy,
        choice,
        lognormal,
        loguniform,
        normal,
        qlognormal,
        qloguniform,
        qnormal,
        quniform,
        randint,
        uniform,
    )
    from ferry.interactive import InteractiveRun
    from ferry.model import Model, ModelNotFoundException, ResourceConfiguration
    from ferry.run import Run
    from ferry.runconfig import (
        DockerConfiguration,
        HistoryConfiguration,
        MpiConfiguration,
        PyTorchConfiguration,
        RunConfiguration,
        TensorflowConfiguration,
    )
    from ferry.script_run_config import ScriptRunConfig
    from ferry.status import RunStatus
    from ferry.telemetry import UserErrorException, set_diagnostics_collection
    from ferry.widgets import RunDetails
    from ferry.workspace import Workspace

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
