"""Inside a ferry run, the real azureml-core's ``Run.get_context()`` returns ferry's run.

When a job's environment has the real Azure ML SDK (``azureml-core``, or ``azureml-defaults``
which pulls it in, as environments carried over from Azure ML usually do), the ``azureml`` shim
steps aside and the script gets the real SDK (see :mod:`.shadowing`). Left alone, its
``Run.get_context()`` finds no Azure ML run and returns ``_OfflineRun``, which prints every metric
(``Attempted to log scalar metric loss:``) and records nothing.

So, in a ferry run only (``FERRY_RUN_ID`` and ``FERRY_SPOOL_DIR`` set), the shim installs
:class:`RealRunPatcher` on ``sys.meta_path``: when the real ``azureml.core.run`` is imported (by
``from azureml.core import Run`` as well, since ``azureml.core`` imports it), its module is loaded
as usual and then ``Run.get_context`` is replaced by one that returns ferry's run. Every other
``azureml.*`` name stays the real SDK's; subclasses (``ScriptRun`` …) inherit the change. Outside
a ferry run nothing is installed and the SDK is untouched; a patched ``get_context`` called after
the job's variables were removed calls the SDK's own.

The run returned is ferry's (``ferry_runtime.JobRun``), not an instance of the SDK's ``Run`` class:
the logging, tagging, upload and child-run API is the same, the SDK's service calls are not there.

Example (what the shim does)::

    if in_ferry_run(os.environ):
        install(shim_folder)
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any, Mapping, Optional, Sequence

from .context import ENV_RUN_ID, ENV_SPOOL_DIR

TARGET = "azureml.core.run"
#: set on a real ``Run`` class once its ``get_context`` is ferry's
PATCHED = "_ferry_get_context_patched"


def in_ferry_run(environ: Mapping[str, str]) -> bool:
    """True when ``environ`` holds the variables of a ferry run."""
    return bool(environ.get(ENV_RUN_ID) and environ.get(ENV_SPOOL_DIR))


def install(shim_dir: str) -> None:
    """Make the real ``azureml.core.run.Run.get_context`` return ferry's run (once per process).

    ``shim_dir`` is the runtime path folder; the shim's own ``azureml.core.run`` needs no patch.
    """
    loaded = sys.modules.get(TARGET)
    if loaded is not None:  # imported before the shim could act: patch it in place
        patch_run_class(loaded)
    if not any(getattr(finder, PATCHED, False) for finder in sys.meta_path):
        sys.meta_path.insert(0, RealRunPatcher(shim_dir))


class RealRunPatcher:
    """A meta path finder that loads the real ``azureml.core.run`` and then patches ``Run``."""

    _ferry_get_context_patched = True

    def __init__(self, shim_dir: str) -> None:
        self.shim_dir = os.path.realpath(shim_dir)

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        """The spec the other finders give for ``azureml.core.run``, with a patching loader."""
        if fullname != TARGET:
            return None
        spec: Optional[importlib.machinery.ModuleSpec] = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is not self and find is not None:
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        if spec is None:
            return None
        origin = os.path.realpath(spec.origin) if spec.origin else ""
        if spec.loader is None or origin.startswith(self.shim_dir + os.sep):
            return spec  # the shim's own module: its Run is already ferry's
        if callable(getattr(spec.loader, "exec_module", None)):
            spec.loader = _PatchingLoader(spec.loader)  # type: ignore[assignment]
        return spec


class _PatchingLoader:
    """Runs the real loader, then patches the module; everything else is the real loader's."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        patch_run_class(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package …
        return getattr(self._loader, name)


def patch_run_class(module: ModuleType) -> None:
    """Replace ``module.Run.get_context`` by one that returns ferry's run in a ferry run."""
    real = getattr(module, "Run", None)
    if not isinstance(real, type) or getattr(real, PATCHED, False):
        return
    own: Any = real.__dict__.get("get_context")
    bound = getattr(real, "get_context", None)

    def get_context(
        cls: type, /, allow_offline: bool = True, used_for_context_manager: bool = False, **kw: Any
    ) -> Any:
        if in_ferry_run(os.environ):
            from .context import get_context as ferry_context

            return ferry_context(allow_offline, used_for_context_manager)
        sdk = own.__get__(None, cls) if hasattr(own, "__get__") else bound
        if sdk is None:  # pragma: no cover - an SDK without get_context
            raise AttributeError("get_context")
        return sdk(allow_offline, used_for_context_manager, **kw)

    get_context.__doc__ = (
        "ferry's run inside a ferry job (FERRY_RUN_ID set); the SDK's get_context otherwise."
    )
    setattr(real, "get_context", classmethod(get_context))  # noqa: B010 - a foreign class
    setattr(real, PATCHED, True)
