"""An estimator's distributed arguments (node_count, process_count_per_node, the deprecated
backend strings and helpers, the typed configurations) → the run configuration's distributed
settings → the job's distributed plan, as the reference maps them. Pure: nothing runs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from estimator_helpers import est, job

from ferry.errors import ConfigError
from ferry.estimator import Gloo, Mpi, Nccl, ParameterServer, PyTorch, TensorFlow
from ferry.runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration


def test_mpi_backend_and_configurations_map_to_intel_mpi(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "ferry"):
        by_name = est(distributed_backend="mpi", process_count_per_node=2)
    assert "'distributed_backend' parameter will be deprecated" in caplog.text
    assert "'process_count_per_node' parameter will be deprecated" in caplog.text
    typed = est(distributed_training=MpiConfiguration(process_count_per_node=2))
    helper = est(distributed_training=Mpi(process_count_per_node=2))
    for e in (by_name, typed, helper):
        rc = e.run_config
        assert (rc.framework, rc.communicator, rc.node_count) == ("Python", "IntelMpi", 1)
        assert rc.mpi.process_count_per_node == 2
        plan = job(e).distributed
        assert plan is not None and (plan.kind, plan.processes_per_node) == ("mpi", 2)
    assert "'Mpi' is deprecated. Please use 'MpiConfiguration'" in caplog.text


def test_pytorch_backends_map_to_pytorch_configuration() -> None:
    for e in (
        PyTorch("s", entry_script="t.py", compute_target="local", distributed_backend="gloo",
                node_count=2, process_count_per_node=2),
        PyTorch("s", entry_script="t.py", compute_target="local", node_count=2,
                process_count_per_node=2, distributed_training=Gloo()),
        est(distributed_training=PyTorchConfiguration("Gloo", process_count=4, node_count=2)),
    ):  # fmt: skip
        rc = e.run_config
        assert (rc.framework, rc.communicator, rc.node_count) == ("PyTorch", "gloo", 2)
        assert (rc.pytorch.process_count, rc.pytorch.node_count) == (4, 2)
        plan = job(e).distributed
        assert plan is not None and (plan.kind, plan.node_count, plan.processes_per_node) == (
            "pytorch", 2, 2,
        )  # fmt: skip
    nccl = PyTorch("s", entry_script="t.py", compute_target="local", distributed_training=Nccl())
    assert (nccl.run_config.communicator, nccl.run_config.pytorch.process_count) == ("nccl", 1)


def test_parameter_server_maps_to_tensorflow_and_is_refused_at_submit() -> None:
    for e in (
        TensorFlow("s", entry_script="t.py", compute_target="local", distributed_backend="ps",
                   worker_count=2, parameter_server_count=1),
        TensorFlow("s", entry_script="t.py", compute_target="local",
                   distributed_training=ParameterServer(worker_count=2)),
        TensorFlow("s", entry_script="t.py", compute_target="local",
                   distributed_training=TensorflowConfiguration(worker_count=2)),
    ):  # fmt: skip
        rc = e.run_config
        assert (rc.framework, rc.communicator) == ("TensorFlow", "ParameterServer")
        assert (rc.tensorflow.worker_count, rc.tensorflow.parameter_server_count) == (2, 1)
        with pytest.raises(ConfigError, match="parameter server"):
            job(e)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: est(node_count=2), "'distributed_backend' or 'distributed_training' must be"),
        (lambda: est(process_count_per_node=2), "must be specified when node_count > 1"),
        (lambda: est(node_count=0, distributed_backend="mpi"), r"node_count\) must be a whole"),
        (lambda: est(distributed_backend="gloo"), "Supported backend\\(s\\): mpi"),
        (lambda: est(distributed_backend="mpi", distributed_training=Mpi()), "not both"),
        (lambda: est(distributed_training="mpi"), "distributed_training must be a"),
        (lambda: est(distributed_training=Mpi(2), process_count_per_node=3), "contradicts Mpi"),
        (lambda: est(distributed_training=MpiConfiguration(node_count=2), node_count=3),
         "node_count=3 contradicts MpiConfiguration"),
        (lambda: PyTorch("s", entry_script="t.py", compute_target="local",
                         distributed_training=TensorflowConfiguration()),
         "must be a MpiConfiguration or PyTorchConfiguration"),
        (lambda: TensorFlow("s", entry_script="t.py", compute_target="local",
                            distributed_training=Gloo()), "not supported by the TensorFlow"),
        (lambda: TensorFlow("s", entry_script="t.py", compute_target="local", worker_count=2),
         "used only with distributed_backend='ps'"),
        (lambda: Mpi(process_count_per_node=0), r"Mpi\(process_count_per_node\) must be"),
    ],
)  # fmt: skip
def test_bad_distributed_settings_name_the_argument(make: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()
