"""The layering holds: the machinery takes plain specs, the in-job code takes only the stdlib.

Every import is read from the source with ``ast`` — at the top of a module, inside functions
(lazy) and under ``TYPE_CHECKING`` alike — so a shortcut through a lazy import fails here too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "ferry"

#: the library API: what users import; the machinery must not reach back into it
PUBLIC = {
    "ferry",
    "ferry.workspace",
    "ferry.experiment",
    "ferry.run",
    "ferry.environment",
    "ferry.compute",
    "ferry.runconfig",
    "ferry.script_run_config",
    "ferry.interactive",
    "ferry.submit",
    "ferry.jobfile",
    "ferry.download",
    "ferry.run_state",
    "ferry.run_logging",
    "ferry.run_files",
    "ferry.run_logs",
    "ferry.run_source",
    "ferry.telemetry",
    "ferry.widgets",
    "ferry.estimator",
    "ferry.compute_attach",
    "ferry.compute_aml",
    "ferry.compute_hdinsight",
    "ferry.compute_settings",
    "ferry.compute_status",
    "ferry.estimator.generic",
    "ferry.estimator.frameworks",
    "ferry.estimator.distributed",
    "ferry.estimator.packages",
    "ferry.estimator.settings",
}
MACHINERY = ("envbuild", "targets")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``; relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module != "ferry":  # "from ferry import envbuild" is about envbuild
                found.append((node.lineno, module))
            # "from ferry import environment" names a module too
            for alias in node.names:
                found.append((node.lineno, f"{module}.{alias.name}"))
    return found


def _files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (SRC / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _files(*MACHINERY), ids=lambda p: str(p.relative_to(SRC)))
def test_the_machinery_never_imports_the_public_api(path: Path) -> None:
    bad = [f"line {line}: {module}" for line, module in _imports(path) if module in PUBLIC]
    assert bad == [], f"{path.relative_to(SRC)} imports the public API: {bad}"


def _stdlib_only(path: Path, own: str) -> list[str]:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if module.startswith(own) or top in stdlib or top == "__future__":
            continue
        if top in ("ferry", "ferry_runtime", "azureml") and "_shims" in path.parts:
            continue  # the shims import the runtime package by its shipped name
        bad.append(f"line {line}: {module}")
    return bad


@pytest.mark.parametrize("path", _files("runtime"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_in_job_runtime_imports_only_the_standard_library(path: Path) -> None:
    assert _stdlib_only(path, "ferry.runtime") == []


@pytest.mark.parametrize("path", _files("agent"), ids=lambda p: str(p.relative_to(SRC)))
def test_the_agent_imports_only_the_standard_library(path: Path) -> None:
    siblings = tuple(f": {p.stem}" for p in (SRC / "agent").glob("*.py"))
    # run as a script, the watchdog imports its siblings by their bare names
    bad = [b for b in _stdlib_only(path, "ferry.agent") if not b.endswith(siblings)]
    assert bad == []


def test_the_seam_module_is_a_leaf() -> None:
    """ferry.spec imports nothing of ferry at run time (types only, for the checker)."""
    tree = ast.parse((SRC / "spec.py").read_text(encoding="utf-8"))
    runtime_imports = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ferry")
    ]
    assert runtime_imports == []


@pytest.mark.parametrize(
    "path",
    [SRC / "spec.py", SRC / "supervisor.py", *_files(*MACHINERY)],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_no_any_where_the_layers_meet(path: Path) -> None:
    """Workspaces and job definitions are typed at the seam (WorkspaceServices, JobSpec)."""
    text = path.read_text(encoding="utf-8")
    for needle in ("workspace: Any", "definition: Mapping[str, Any]"):
        assert needle not in text, f"{path.relative_to(SRC)} has {needle!r}"
