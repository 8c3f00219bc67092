"""Names a package imports only when they are first used (PEP 562): importing ``ferry`` (in a
job, in a notebook) must stay cheap, so a package's public names are looked up on first access.

Example::

    _LAZY = {"Dataset": "ferry.data.dataset"}
    __getattr__, __dir__ = lazy_names(globals(), _LAZY)
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing is not imported: ~10 ms of every ferry command (the CLI's too)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any


def lazy_names(
    namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of the package whose ``globals()`` is
    ``namespace``: ``names`` maps each public name to the module that defines it; a name once
    imported is kept in the package."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace["__all__"])

    return __getattr__, __dir__
