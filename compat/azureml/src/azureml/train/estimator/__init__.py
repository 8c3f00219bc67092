"""``azureml.train.estimator``: the generic Estimator and the distributed-training helpers."""

from ferry.estimator import Estimator, Gloo, Mpi, Nccl, ParameterServer

__all__ = ["Estimator", "Gloo", "Mpi", "Nccl", "ParameterServer"]
