"""How a shim steps aside for the real package it shadows.

The runtime path put on a job's ``PYTHONPATH`` carries small ``azureml`` and ``ferry`` packages so
that ``from azureml.core import Run`` and ``from ferry import Run`` work in any interpreter. When
the job's interpreter has the real package too (the azureml-core SDK, or the full ferry library),
the real one must win: the shim looks for another copy on the search path without its own folder
and, if there is one, loads it in its own place (``sys.modules[name]`` replaced during the shim's
import, which the import system honours).

``azureml`` may be a namespace package (PEP 420) or a ``pkgutil``-style one in the real SDK. A
namespace is merged instead: its folders come first on the shim's ``__path__``, the shim's own
folder last, so ``azureml.core`` resolves to the real SDK when installed and to the shim otherwise,
and other ``azureml.*`` packages (``azureml.dataprep`` …) stay importable.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from typing import Iterable, List, Optional

#: :func:`defer_to_real` outcomes
REAL = "real"  # the real package replaced the shim in sys.modules
MERGED = "merged"  # a real namespace package: its folders were put on the shim's __path__
NONE = "none"  # no real package: the shim is the package


def defer_to_real(name: str, own_dir: str, search_path: Iterable[str]) -> str:
    """Load the real ``name`` in place of the shim being imported, if one exists.

    ``own_dir`` is the folder that holds the shim package (to leave out of ``search_path``);
    ``search_path`` is ``sys.path`` for a top-level package, the parent's ``__path__`` otherwise.
    Returns :data:`REAL`, :data:`MERGED` or :data:`NONE`.
    """
    spec = find_real(name, own_dir, search_path)
    if spec is None:
        return NONE
    if spec.origin is None or spec.loader is None:  # a namespace package: nothing to execute
        shim = sys.modules.get(name)
        own_package = os.path.join(own_dir, name.rpartition(".")[2])
        if shim is not None and hasattr(shim, "__path__"):
            shim.__path__ = [*_locations(spec), own_package]
        return MERGED
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    own_package = os.path.join(own_dir, name.rpartition(".")[2])
    path = getattr(module, "__path__", None)
    if isinstance(path, list) and not any(_same(p, own_package) for p in path):
        path.append(own_package)  # a real azureml without azureml.core still finds the shim's
    return REAL


def find_real(
    name: str, own_dir: str, search_path: Iterable[str]
) -> Optional[importlib.machinery.ModuleSpec]:
    """The spec of ``name`` on ``search_path`` without ``own_dir``, or None."""
    others = [entry for entry in search_path if not _same(entry, own_dir)]
    return importlib.machinery.PathFinder.find_spec(name, others)


def _locations(spec: importlib.machinery.ModuleSpec) -> List[str]:
    return [str(p) for p in (spec.submodule_search_locations or ())]


def _same(a: str, b: str) -> bool:
    if not isinstance(a, str):
        return False
    return os.path.normcase(os.path.realpath(a or os.curdir)) == os.path.normcase(
        os.path.realpath(b)
    )
