"""The ``ray`` compute target: jobs placed on a Ray cluster, distributed jobs over its nodes.

Needs the ``ray`` extra (``pip install 'ferry[ray]'``). Example::

    from ferry import ComputeTarget, PyTorchConfiguration, RayCluster, ScriptRunConfig
    ComputeTarget.attach(ws, "ray", RayCluster.attach_configuration(address="auto"))
    src = ScriptRunConfig("src", "train.py", compute_target="ray",
                          distributed_job_config=PyTorchConfiguration("Gloo", process_count=4,
                                                                      node_count=2))

Pieces: :mod:`.cluster` (settings, ``RayCluster``, what a run asks of the cluster — pure),
:mod:`.connect` (driver connection, nodes, status), :mod:`.shipping` (code, blobs, runtime and
environment for nodes), :mod:`.agent` (the actor on each node, standard library only),
:mod:`.streams` (logs and spool back into the run folder) and :mod:`.target` (the contract).
"""

from __future__ import annotations

try:
    import ray  # noqa: F401 - a missing library fails here, so the registry can name the extra
except ImportError as exc:
    raise ImportError(
        "the ray target needs the ray library — install it with: pip install 'ferry[ray]'",
        name="ray",
    ) from exc

from ferry.targets.ray.cluster import RayCluster, RaySettings
from ferry.targets.ray.target import RayTarget

__all__ = ["RayCluster", "RaySettings", "RayTarget"]
