"""``azureml.train.dnn``: the PyTorch and TensorFlow estimators and the distributed helpers."""

from ferry.estimator import Gloo, Mpi, Nccl, ParameterServer, PyTorch, TensorFlow

__all__ = ["Gloo", "Mpi", "Nccl", "ParameterServer", "PyTorch", "TensorFlow"]
