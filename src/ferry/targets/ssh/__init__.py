"""The ``ssh`` compute target: run jobs on a machine reached over SSH (needs ``ferry[ssh]``).

Example::

    from ferry import ComputeTarget, RemoteCompute
    config = RemoteCompute.attach_configuration(username="me", address="10.0.0.4",
                                                private_key_file="~/.ssh/id_ed25519")
    ComputeTarget.attach(ws, "vm", config)      # then submit with compute_target="vm"

Pieces: :mod:`.settings` (what is stored, secrets from the environment), :mod:`.connect`
(host keys, authentication), :mod:`.session` (the agent protocol), :mod:`.transfer` (SFTP),
:mod:`.remote_env` (which environment on the host), :mod:`.remote_run` (one job's life),
:mod:`.remote_link` (the run's connection), :mod:`.remote_files` (what is sent to the host and
brought back),
:mod:`.remote_docker` (its containers on the host's engine), :mod:`.remote_mpi` (an MPI job's
ranks, started by the host's Open MPI mpirun), :mod:`.sink` (what comes back), :mod:`.target`
(the Target contract). The program run on the
host is the neutral :mod:`ferry.agent` package, shipped as files.

Importing this package costs nothing: asyncssh is only looked for here (a missing library
fails at once, so the registry can name the extra) and imported with :class:`SshTarget`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if importlib.util.find_spec("asyncssh") is None:
    raise ImportError(
        "the ssh target needs the asyncssh library — install it with: pip install 'ferry[ssh]'",
        name="asyncssh",
    )

if TYPE_CHECKING:
    from ferry.targets.ssh.target import SshTarget

__all__ = ["SshTarget"]


def __getattr__(name: str) -> Any:
    if name == "SshTarget":
        from ferry.targets.ssh.target import SshTarget

        return SshTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
