"""Estimators: the reference's deprecated way to configure a training run in one object.

``Estimator`` (``azureml.train.estimator``) and the framework estimators ``SKLearn``
(``azureml.train.sklearn``), ``PyTorch`` and ``TensorFlow`` (``azureml.train.dnn``) take the
reference's constructor arguments and defaults, and each becomes a ``ScriptRunConfig`` with an
``Environment`` — so ``experiment.submit(estimator)`` and ``HyperDriveConfig(estimator=…)`` run on
every target. Constructing one logs the reference's deprecation warning, pointing to
``ScriptRunConfig``.

Example::

    from ferry.estimator import SKLearn
    est = SKLearn("src", entry_script="train.py", compute_target="local",
                  script_params={"--alpha": 0.5, "--normalize": None})
    run = Experiment(ws, "sk").submit(est)   # python train.py --alpha 0.5 --normalize
"""

from __future__ import annotations

from ferry.estimator.distributed import Gloo, Mpi, Nccl, ParameterServer
from ferry.estimator.frameworks import PyTorch, SKLearn, TensorFlow
from ferry.estimator.generic import Estimator

__all__ = [
    "Estimator",
    "Gloo",
    "Mpi",
    "Nccl",
    "ParameterServer",
    "PyTorch",
    "SKLearn",
    "TensorFlow",
]
