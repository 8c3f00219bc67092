"""The ``ssh`` compute target: run jobs on a machine reached over SSH (needs ``ferry[ssh]``).

Example::

    from ferry import ComputeTarget, RemoteCompute
    config = RemoteCompute.attach_configuration(username="me", address="10.0.0.4",
                                                private_key_file="~/.ssh/id_ed25519")
    ComputeTarget.attach(ws, "vm", config)      # then submit with compute_target="vm"

Pieces: :mod:`.settings` (what is stored, secrets from the environment), :mod:`.connect`
(host keys, authentication), :mod:`.session` (the agent protocol), :mod:`.transfer` (SFTP),
:mod:`.remote_env` (which environment on the host), :mod:`.remote_run` (one job's life),
:mod:`.target` (the Target contract) and :mod:`.agent` (the stdlib program run on the host).
"""

from __future__ import annotations

import asyncssh  # noqa: F401 - a missing library fails here, so the registry can name the extra

from ferry.targets.ssh.settings import RemoteCompute, SshSettings
from ferry.targets.ssh.target import SshTarget

__all__ = ["RemoteCompute", "SshSettings", "SshTarget"]
