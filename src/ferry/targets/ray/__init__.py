"""The ``ray`` compute target: jobs placed on a Ray cluster, distributed jobs over its nodes.

Needs the ``ray`` extra (``pip install 'ferry[ray]'``). Example::

    from ferry import ComputeTarget, PyTorchConfiguration, RayCluster, ScriptRunConfig
    ComputeTarget.attach(ws, "ray", RayCluster.attach_configuration(address="auto"))
    src = ScriptRunConfig("src", "train.py", compute_target="ray",
                          distributed_job_config=PyTorchConfiguration("Gloo", process_count=4,
                                                                      node_count=2))

Pieces: :mod:`.cluster` (settings, what a run asks of the cluster — pure), :mod:`.connect`
(driver connection, nodes, status), :mod:`.shipping` (code, blobs, runtime and environment for
nodes), :mod:`.agent` (the actor on each node; it runs the ranks under ferry's watchdog),
:mod:`.streams` (logs and spool back into the run folder) and :mod:`.target` (the contract).

Importing this package costs nothing: Ray is only looked for here (a missing library fails at
once, so the registry can name the extra) and imported with :class:`RayTarget`.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if importlib.util.find_spec("ray") is None:
    raise ImportError(
        "the ray target needs the ray library — install it with: pip install 'ferry[ray]'",
        name="ray",
    )

if TYPE_CHECKING:
    from ferry.targets.ray.target import RayTarget

__all__ = ["RayTarget"]


def __getattr__(name: str) -> Any:
    if name == "RayTarget":
        from ferry.targets.ray.target import RayTarget

        return RayTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
