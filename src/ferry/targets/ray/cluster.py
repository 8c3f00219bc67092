"""A Ray target's settings and what a run asks of the cluster (pure: no Ray imported).

The public builder is ``RayCluster`` (:mod:`ferry.compute`); it and ``ferry target attach --type
ray`` check their settings with :func:`validate_config` here. Example::

    validate_config({"address": "ray://head:10001", "num_cpus": 2})

Resources are per process (per rank): ``num_cpus``, ``num_gpus``, ``memory`` (bytes, or a size
such as ``"4GiB"``) and ``resources`` (custom Ray resources). A node of a distributed run gets one
placement-group bundle holding the resources of all its processes. Each node keeps ferry's cache,
environments and run folders in ``node_dir``, by default a folder of the node user's own
(``~/.cache/ferry-ray``, made private and checked there): never a folder shared between users,
whose environments another user's jobs would run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ferry.errors import ConfigError

#: ``~`` is the home of the user Ray runs as on the node (expanded there)
DEFAULT_NODE_DIR = "~/.cache/ferry-ray"
#: the default before node folders were per user: it now means the default above
_OLD_DEFAULT_NODE_DIR = "/tmp/ferry-ray"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class RaySettings:
    """A Ray target's stored settings (types checked, defaults filled)."""

    address: str = "auto"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory: int | None = None
    resources: dict[str, float] = field(default_factory=dict)
    #: where nodes keep ferry's blob cache, runtime, environments and run folders
    node_dir: str = DEFAULT_NODE_DIR
    #: a job whose supervisor has not called for this long is stopped on its node
    lease_seconds: float = 60.0
    namespace: str = "ferry"
    #: "" finds uv on the node, "none" never uses it, else the path of uv there
    uv: str = ""
    connect_timeout: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RaySettings:
        """Check and convert a stored or user-given configuration (CLI values are strings)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r} for a ray target; known settings: "
                + ", ".join(sorted(known))
            )
        values: dict[str, Any] = {}
        for key, value in config.items():
            if key in ("num_cpus", "num_gpus", "lease_seconds", "connect_timeout"):
                values[key] = _number(value, key)
            elif key == "memory":
                values[key] = None if value in (None, "") else parse_size(value)
            elif key == "resources":
                values[key] = _resources(value)
            elif key == "node_dir":
                text = str(value or "").strip()
                values[key] = DEFAULT_NODE_DIR if text in ("", _OLD_DEFAULT_NODE_DIR) else text
            else:
                values[key] = str(value)
        settings = cls(**values)
        check_address(settings.address)
        if settings.num_cpus <= 0 and settings.num_gpus <= 0 and not settings.resources:
            raise ConfigError("a ray target must ask for some resource per process: num_cpus > 0")
        return settings

    def process_resources(self) -> dict[str, float]:
        """What one process (rank) asks of Ray."""
        out: dict[str, float] = {}
        if self.num_cpus:
            out["CPU"] = self.num_cpus
        if self.num_gpus:
            out["GPU"] = self.num_gpus
        if self.memory:
            out["memory"] = float(self.memory)
        out.update(self.resources)
        return out


def _number(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"ray setting {key} must be a number, not {value!r}") from None
    if number < 0:
        raise ConfigError(f"ray setting {key} must not be negative")
    return number


def parse_size(value: Any) -> int:
    """Bytes from an int or a size such as ``"512MB"``, ``"4GiB"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f"memory {value!r} is not a size such as 4000000000, '512MB' or '4GiB'")
    unit = (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    power = "bkmgt".index(unit[0]) if unit else 0
    return int(float(match.group(1)) * (base**power if unit else 1))


def _resources(value: Any) -> dict[str, float]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"resources {text!r} is not a JSON object: {exc}") from None
        else:
            pairs = [p.partition("=") for p in text.split(",") if p.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise ConfigError(f"resources {text!r} must look like 'name=amount,other=1'")
            value = {k.strip(): v for k, _, v in pairs}
    if not isinstance(value, Mapping):
        raise ConfigError("resources must map Ray resource names to amounts")
    return {str(k): _number(v, f"resources[{k!r}]") for k, v in value.items()}


def check_address(address: str) -> str:
    """``auto``, ``ray://host:port`` or ``host:port``; anything else is refused with the forms."""
    if address == "auto":
        return address
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    bad_host = not host or "/" in host or " " in host
    if not sep or bad_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"ray address {address!r} is not valid; use 'auto' (the cluster started on this "
            "machine), 'host:port' (the head's GCS port, 6379 by default) or "
            "'ray://host:port' (Ray Client, 10001 by default)"
        )
    return address


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What to store for a ray target: its settings, checked, defaults filled."""
    return RaySettings.from_config(config).to_dict()


# ------------------------------------------------------------------------------------------------
# what a run asks of the cluster (pure)


@dataclass(frozen=True)
class Placement:
    """The placement group of one run: one bundle per node, spread over distinct nodes."""

    bundles: list[dict[str, float]]
    strategy: str  # "PACK" for one node, "STRICT_SPREAD" for several

    def describe(self) -> str:
        each = format_resources(self.bundles[0])
        if len(self.bundles) == 1:
            return f"{{{each}}} on one node"
        return f"{{{each}}} on each of {len(self.bundles)} distinct nodes"


def placement_for(settings: RaySettings, node_count: int, processes_per_node: int) -> Placement:
    per_process = settings.process_resources()
    bundle = {k: v * processes_per_node for k, v in per_process.items()}
    return Placement(
        [dict(bundle) for _ in range(node_count)], "STRICT_SPREAD" if node_count > 1 else "PACK"
    )


def fits(bundle: Mapping[str, float], have: Mapping[str, float]) -> bool:
    return all(have.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items())


def why_impossible(placement: Placement, node_totals: Sequence[Mapping[str, float]]) -> str | None:
    """Why the cluster can never hold ``placement`` (its nodes' totals), or None if it can."""
    big_enough = sum(1 for total in node_totals if fits(placement.bundles[0], total))
    if big_enough >= len(placement.bundles):
        return None
    listing = "; ".join(format_resources(t) for t in node_totals) or "no alive nodes"
    return (
        f"the run asks for {placement.describe()}, but "
        + (f"only {big_enough} node(s)" if big_enough else "no node")
        + f" of the cluster can ever hold that (nodes: {listing}). Lower the target's per-process "
        "resources (ferry target attach … --set num_cpus=…), the number of processes or nodes, "
        "or add nodes to the cluster"
    )


def why_waiting(placement: Placement, node_free: Sequence[Mapping[str, float]]) -> str:
    """The reason a feasible placement is not ready yet (what is free now)."""
    listing = "; ".join(format_resources(f) for f in node_free) or "nothing"
    return (
        f"waiting for cluster resources: the run needs {placement.describe()}; free now: {listing}"
    )


def format_resources(resources: Mapping[str, float]) -> str:
    shown = []
    for key in sorted(resources, key=lambda k: (k not in ("CPU", "GPU", "memory"), k)):
        if key.startswith("node:") or key == "object_store_memory" or "_group_" in key:
            continue
        value = resources[key]
        if key == "memory":
            shown.append(f"memory {value / 2**30:.1f} GiB")
        else:
            shown.append(f"{key} {value:g}")
    return ", ".join(shown)
