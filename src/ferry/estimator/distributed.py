"""The reference's estimator-era distributed settings, mapped onto the run configuration.

An estimator takes ``node_count``, ``process_count_per_node`` and either a deprecated backend
string (``distributed_backend='mpi'|'gloo'|'nccl'|'ps'``) or a ``distributed_training`` object:
the deprecated helpers :class:`Mpi`, :class:`Gloo`, :class:`Nccl`, :class:`ParameterServer`, or
the typed :class:`~ferry.runconfig.MpiConfiguration`, :class:`~ferry.runconfig.PyTorchConfiguration`,
:class:`~ferry.runconfig.TensorflowConfiguration`. :func:`apply_distributed` writes them into a
``RunConfiguration`` the way ``ScriptRunConfig(distributed_job_config=…)`` does, so the job runs
with the same distributed plan on every target:

* MPI (``'mpi'``, ``Mpi()``, ``MpiConfiguration``) → framework ``Python``, communicator
  ``IntelMpi``, ``mpi.process_count_per_node``. (The reference stores ``Mpi()`` as communicator
  ``"Mpi"``, a name only its service knew; ferry stores the name its plan reads.)
* ``'gloo'``/``'nccl'``, ``Gloo()``/``Nccl()``, ``PyTorchConfiguration`` → framework ``PyTorch``,
  communicator ``gloo``/``nccl``, ``pytorch.process_count`` = nodes × processes per node.
* ``'ps'``, ``ParameterServer()``, ``TensorflowConfiguration`` → framework ``TensorFlow``,
  communicator ``ParameterServer`` (refused at submit until parameter-server jobs exist here).

Example::

    rc = RunConfiguration()
    apply_distributed(rc, owner="PyTorch", backends=("mpi", "gloo", "nccl"), node_count=2,
                      process_count_per_node=1, backend=None, training=Gloo())
    rc.communicator, rc.pytorch.process_count      # ('gloo', 2)
"""

from __future__ import annotations

import copy
import logging

from ferry.errors import ConfigError
from ferry.runconfig import (
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    TensorflowConfiguration,
)

log = logging.getLogger("ferry")

#: the typed distributed configurations an estimator may take
TYPED: tuple[type, ...] = (MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration)


class _DistributedTraining:
    """Base of the reference's deprecated distributed-training helpers."""

    #: estimator classes (lower case) that accept this helper, as the reference
    supported_by: tuple[str, ...] = ()
    replacement = ""

    def __init__(self) -> None:
        log.warning(
            "'%s' is deprecated. Please use '%s' with 'ScriptRunConfig'",
            type(self).__name__,
            self.replacement,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Mpi(_DistributedTraining):
    """MPI settings for a distributed estimator job (deprecated: use MpiConfiguration).

    Example::

        PyTorch("src", entry_script="train.py", compute_target="local", node_count=1,
                distributed_training=Mpi(process_count_per_node=2))
    """

    supported_by = ("pytorch", "tensorflow", "chainer", "estimator")
    replacement = "MpiConfiguration"

    def __init__(self, process_count_per_node: int = 1) -> None:
        super().__init__()
        self.process_count_per_node = _positive(
            process_count_per_node, "Mpi(process_count_per_node)"
        )

    def __repr__(self) -> str:
        return f"Mpi(process_count_per_node={self.process_count_per_node})"


class Gloo(_DistributedTraining):
    """PyTorch's Gloo backend (deprecated: use PyTorchConfiguration(communication_backend='Gloo'))."""

    supported_by = ("pytorch", "estimator")
    replacement = "PyTorchConfiguration(communication_backend='Gloo')"


class Nccl(_DistributedTraining):
    """PyTorch's NCCL backend (deprecated: use PyTorchConfiguration(communication_backend='Nccl'))."""

    supported_by = ("pytorch", "estimator")
    replacement = "PyTorchConfiguration(communication_backend='Nccl')"


class ParameterServer(_DistributedTraining):
    """TensorFlow parameter-server settings (deprecated: use TensorflowConfiguration)."""

    supported_by = ("tensorflow", "estimator")
    replacement = "TensorflowConfiguration"

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        super().__init__()
        self.worker_count = _positive(worker_count, "ParameterServer(worker_count)")
        self.parameter_server_count = _positive(
            parameter_server_count, "ParameterServer(parameter_server_count)"
        )

    def __repr__(self) -> str:
        return (
            f"ParameterServer(worker_count={self.worker_count}, "
            f"parameter_server_count={self.parameter_server_count})"
        )


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a whole number ≥ 1, not {value!r}")
    return value


def apply_distributed(
    rc: RunConfiguration,
    *,
    owner: str,
    backends: tuple[str, ...],
    node_count: object,
    process_count_per_node: object,
    backend: object,
    training: object,
    typed: tuple[type, ...] = TYPED,
    worker_count: int = 1,
    parameter_server_count: int = 1,
) -> None:
    """Write an estimator's distributed settings into ``rc`` (see the module docstring).

    ``owner`` is the estimator's class name, ``backends`` the backend strings it accepts and
    ``typed`` the configuration classes (the reference ignored the others without a word).
    Raises ConfigError naming the argument for anything the reference refuses, and for settings
    that contradict each other (the reference kept one of them silently)."""
    nodes = _positive(node_count, f"{owner}(node_count)")
    per_node = _positive(process_count_per_node, f"{owner}(process_count_per_node)")
    if per_node != 1:
        log.warning(
            "'process_count_per_node' parameter will be deprecated. Please use it as part of "
            "'distributed_training' parameter."
        )
    rc.node_count = nodes
    rc.framework, rc.communicator = "Python", "None"
    if backend is not None and training is not None:
        raise ConfigError(
            f"{owner}: give distributed_training only (distributed_backend={backend!r} is its "
            "deprecated spelling), not both"
        )
    if backend is None and training is None:
        if nodes > 1 or per_node > 1:
            raise ConfigError(
                f"{owner}: 'distributed_backend' or 'distributed_training' must be specified when "
                f"node_count > 1 or process_count_per_node > 1 (got {nodes} and {per_node}); e.g. "
                "distributed_training=MpiConfiguration(process_count_per_node=2)"
            )
        return
    if backend is not None:
        _from_backend(rc, owner, backends, backend, nodes, per_node, worker_count,
                      parameter_server_count)  # fmt: skip
    else:
        _from_training(rc, owner, training, nodes, per_node, typed)


def _from_backend(
    rc: RunConfiguration,
    owner: str,
    backends: tuple[str, ...],
    backend: object,
    nodes: int,
    per_node: int,
    worker_count: int,
    parameter_server_count: int,
) -> None:
    name = backend.lower() if isinstance(backend, str) else None
    if name not in backends:
        raise ConfigError(
            f"{owner}: unsupported distributed_backend value {backend!r}. Supported backend(s): "
            f"{', '.join(backends)} (or pass distributed_training=…)"
        )
    log.warning(
        "'distributed_backend' parameter will be deprecated. Please use 'distributed_training' "
        "instead."
    )
    if name == "mpi":
        _mpi(rc, MpiConfiguration(process_count_per_node=per_node, node_count=nodes))
    elif name in ("gloo", "nccl"):
        _pytorch(rc, name, nodes, per_node)
    else:  # "ps"
        tf = TensorflowConfiguration(
            worker_count=_positive(worker_count, f"{owner}(worker_count)"),
            parameter_server_count=_positive(
                parameter_server_count, f"{owner}(parameter_server_count)"
            ),
        )
        _tensorflow(rc, tf)


def _from_training(
    rc: RunConfiguration,
    owner: str,
    training: object,
    nodes: int,
    per_node: int,
    typed: tuple[type, ...],
) -> None:
    if isinstance(training, _DistributedTraining):
        if owner.lower() not in training.supported_by:
            raise ConfigError(
                f"{owner}: distributed_training={training!r} is not supported by the {owner} "
                f"estimator; {type(training).__name__} works with "
                f"{', '.join(training.supported_by)}"
            )
        if isinstance(training, Mpi):
            per_node = _agree(owner, per_node, training.process_count_per_node, "Mpi")
            _mpi(rc, MpiConfiguration(process_count_per_node=per_node, node_count=nodes))
        elif isinstance(training, Gloo | Nccl):
            _pytorch(rc, type(training).__name__.lower(), nodes, per_node)
        elif isinstance(training, ParameterServer):
            tf = TensorflowConfiguration(training.worker_count, training.parameter_server_count)
            _tensorflow(rc, tf)
        return
    if not isinstance(training, typed):
        raise ConfigError(
            f"{owner}: distributed_training must be a {' or '.join(t.__name__ for t in typed)} "
            f"(or one of the deprecated Mpi(), Gloo(), Nccl(), ParameterServer() the estimator "
            f"supports), not {type(training).__name__}"
        )
    training = copy.deepcopy(training)
    if isinstance(training, MpiConfiguration):
        rc.node_count = _agree_nodes(owner, nodes, training.node_count, "MpiConfiguration")
        training.node_count = rc.node_count
        training.process_count_per_node = _agree(
            owner, per_node, training.process_count_per_node, "MpiConfiguration"
        )
        _mpi(rc, training)
    elif isinstance(training, PyTorchConfiguration):
        rc.node_count = _agree_nodes(owner, nodes, training.node_count, "PyTorchConfiguration")
        if training.process_count is not None and per_node > 1:
            raise ConfigError(
                f"{owner}: process_count_per_node={per_node} and "
                f"PyTorchConfiguration(process_count={training.process_count}) both set the "
                "number of processes; give one of them"
            )
        _pytorch(rc, training.communication_backend, rc.node_count, per_node,
                 training.process_count)  # fmt: skip
    elif isinstance(training, TensorflowConfiguration):
        if per_node > 1:
            raise ConfigError(
                f"{owner}: process_count_per_node is for MPI and PyTorch jobs; a "
                "TensorflowConfiguration sets worker_count and parameter_server_count instead"
            )
        _tensorflow(rc, training)


def _agree(owner: str, given: int, carried: int, what: str) -> int:
    """The estimator's process_count_per_node and the object's must not contradict."""
    if given != 1 and given != carried:
        raise ConfigError(
            f"{owner}: process_count_per_node={given} contradicts {what}(process_count_per_node="
            f"{carried}); set it in one place (on {what})"
        )
    return carried


def _agree_nodes(owner: str, given: int, carried: int, what: str) -> int:
    if given != 1 and carried != 1 and given != carried:
        raise ConfigError(
            f"{owner}: node_count={given} contradicts {what}(node_count={carried}); set it in "
            "one place"
        )
    return max(given, carried)


def _mpi(rc: RunConfiguration, mpi: MpiConfiguration) -> None:
    rc.framework, rc.communicator = "Python", "IntelMpi"
    rc.mpi = mpi


def _pytorch(
    rc: RunConfiguration, backend: str, nodes: int, per_node: int, total: int | None = None
) -> None:
    rc.framework = "PyTorch"
    rc.pytorch = PyTorchConfiguration(
        communication_backend=backend,
        process_count=total if total is not None else nodes * per_node,
        node_count=nodes,
    )
    rc.communicator = rc.pytorch.communication_backend


def _tensorflow(rc: RunConfiguration, tf: TensorflowConfiguration) -> None:
    rc.framework, rc.communicator = "TensorFlow", "ParameterServer"
    rc.tensorflow = tf
