"""Curated environments shipped with ferry: ready by name, no registration needed.

Their pins were chosen to install on Python 3.11 from the package sources of a typical machine
(each has manylinux and macOS wheels); clone one to change it::

    env = Environment.get(ws, "ferry-sklearn").clone("my-sklearn")
    env.python.conda_dependencies.add_pip_package("xgboost==3.1.2")
"""

from __future__ import annotations

from typing import Any

CURATED_PREFIX = "ferry-"
CURATED_VERSION = 1

_SKLEARN = [
    "numpy==2.4.6",
    "pandas==3.0.6",
    "scikit-learn==1.9.1",
    "scipy==1.17.1",
    "matplotlib==3.11.2",
    "joblib==1.6.0",
]

CURATED: dict[str, dict[str, Any]] = {
    "ferry-minimal": {
        "name": "ferry-minimal",
        "version": CURATED_VERSION,
        "python": {"condaDependencies": {"pythonVersion": "3.11", "pipPackages": []}},
    },
    "ferry-sklearn": {
        "name": "ferry-sklearn",
        "version": CURATED_VERSION,
        "python": {"condaDependencies": {"pythonVersion": "3.11", "pipPackages": _SKLEARN}},
    },
}


def curated_spec(name: str) -> dict[str, Any] | None:
    """The dict form of a curated environment (a fresh copy), or None."""
    import copy

    spec = CURATED.get(name)
    return copy.deepcopy(spec) if spec is not None else None
