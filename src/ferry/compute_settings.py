"""What a workspace declares once about its machines: resource ids → addresses, and an SSH pool.

The reference names machines by Azure resource id (``RemoteCompute.attach_configuration(
resource_id="/subscriptions/…/virtualMachines/vm1")``, or ``subscription_id`` +
``resource_group`` + ``vm_name``); ferry reaches them by address. A workspace maps each id it
meets to an address once, and attach configurations that name the id then work unchanged::

    declare_alias(ws.path, "/subscriptions/s/resourceGroups/rg/providers/"
                  "Microsoft.Compute/virtualMachines/vm1", "10.0.0.4")
    # or: ferry target alias /subscriptions/…/vm1 10.0.0.4

The pool is where ``AmlCompute`` clusters start their nodes when it is declared (SSH hosts alike:
the same user, key, CPUs and memory); without one they run on this machine::

    declare_pool(ws.path, Pool(hosts=("10.0.0.5", "10.0.0.6"), username="me",
                               private_key_file="~/.ssh/id_ed25519", cpus=8, memory_gb=32))

Both live in ``<workspace>/compute/settings.json`` (no secrets: keys are paths).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from ferry.errors import ConfigError, TargetError

if TYPE_CHECKING:
    from ferry.targets.ray.autoscale import Pool

SETTINGS_FILE = "compute/settings.json"
_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+$")

#: the resource-provider path of each kind's resources in an Azure resource id
PROVIDERS = {
    "ssh": "Microsoft.Compute/virtualMachines",
    "hdinsight": "Microsoft.HDInsight/clusters",
}


class UndeclaredResource(TargetError, ConfigError):
    """A resource id the workspace has no address for (the message says how to declare it)."""


def _path(workspace_path: Path) -> Path:
    return workspace_path / SETTINGS_FILE


def _load(workspace_path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_path(workspace_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {_path(workspace_path)}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _update(workspace_path: Path, section: str, value: Any) -> None:
    from ferry.agent.files import write_atomic

    path = _path(workspace_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        data = _load(workspace_path)
        if value is None:
            data.pop(section, None)
        else:
            data[section] = value
        write_atomic(str(path), json.dumps(data, indent=2).encode("utf-8"))


def resource_id(kind: str, subscription_id: str, resource_group: str, name: str) -> str:
    """The reference's resource id of a machine (a VM for ssh, a cluster for hdinsight)."""
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/"
        f"{PROVIDERS[kind]}/{name}"
    )


def _key(rid: str) -> str:
    return rid.strip().rstrip("/").lower()  # resource ids are case-insensitive


def declare_alias(workspace_path: Path, rid: str, address: str) -> None:
    """Map a resource id to ``host`` or ``host:port`` in this workspace (replacing any)."""
    if not rid.strip().lower().startswith("/subscriptions/"):
        raise ConfigError(
            f"{rid!r} is not an Azure resource id (/subscriptions/<id>/resourceGroups/<group>/"
            "providers/<provider>/<type>/<name>)"
        )
    if not _ADDRESS.match(address.strip()):
        raise ConfigError(f"address {address!r} must be a host name or IP, optionally :port")
    aliases = dict(_load(workspace_path).get("aliases") or {})
    aliases[_key(rid)] = {"resource_id": rid.strip(), "address": address.strip()}
    _update(workspace_path, "aliases", aliases)


def remove_alias(workspace_path: Path, rid: str) -> bool:
    aliases = dict(_load(workspace_path).get("aliases") or {})
    found = aliases.pop(_key(rid), None) is not None
    _update(workspace_path, "aliases", aliases)
    return found


def aliases(workspace_path: Path) -> dict[str, str]:
    """Resource id → address, as declared."""
    return {
        str(v["resource_id"]): str(v["address"])
        for v in (_load(workspace_path).get("aliases") or {}).values()
    }


def resolve_alias(workspace_path: Path, rid: str) -> tuple[str, int | None]:
    """The host and port (None: the kind's default) declared for a resource id."""
    found = (_load(workspace_path).get("aliases") or {}).get(_key(rid))
    if not found:
        raise UndeclaredResource(
            f"ferry reaches machines by address, and this workspace does not know the address "
            f"of {rid}. Declare it once: `ferry target alias '{rid}' HOST[:PORT]` (or "
            "ferry.compute_settings.declare_alias(ws.path, resource_id, 'host')), or give "
            "address='host' instead of the resource id"
        )
    address = str(found["address"])
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return address.strip("[]"), None


def declare_pool(workspace_path: Path, pool: Pool) -> None:
    """Declare the SSH hosts on which AmlCompute clusters of this workspace start their nodes."""
    if not pool.hosts:
        raise ConfigError("a pool needs at least one host")
    if pool.cpus <= 0 or pool.memory_gb <= 0:
        raise ConfigError("a pool's hosts must declare their CPUs and memory (both > 0)")
    if not pool.username:
        raise ConfigError("a pool needs the SSH user name its hosts accept")
    if pool.private_key_file and not Path(pool.private_key_file).expanduser().is_file():
        raise ConfigError(f"private key file {pool.private_key_file!r} does not exist here")
    _update(workspace_path, "pool", pool.to_dict())


def remove_pool(workspace_path: Path) -> None:
    _update(workspace_path, "pool", None)


def pool(workspace_path: Path) -> Pool | None:
    """The declared pool (needs Ray: only AmlCompute clusters use it), or None."""
    data = _load(workspace_path).get("pool")
    if not data:
        return None
    from ferry.targets.ray.autoscale import Pool

    return Pool.from_dict(data)
