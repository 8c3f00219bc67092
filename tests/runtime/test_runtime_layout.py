"""The runtime path and its shims: built atomically, reused, and stepping aside for real packages."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import ferry.runtime
from ferry.runtime.layout import STAMP, build_runtime_path

RUNTIME_SRC = Path(ferry.runtime.__file__).parent
REFERENCE_SCRIPT = """
from azureml.core import Run
run = Run.get_context()
run.log('a', 1)
"""


def test_layout_has_the_runtime_and_the_shims(runtime_path: Path) -> None:
    assert re.fullmatch(r"runtime-[0-9a-f]{16}", runtime_path.name)
    for relative in (
        "ferry_runtime/__init__.py",
        "ferry_runtime/spool.py",
        "ferry_runtime/_shims/azureml/core/run.py",
        "azureml/__init__.py",
        "azureml/core/__init__.py",
        "azureml/core/run.py",
        "ferry/__init__.py",
        STAMP,
    ):
        assert (runtime_path / relative).is_file(), relative
    # byte-compiled for the interpreter running ferry, so jobs don't recompile it at each start
    import sys

    tag = sys.implementation.cache_tag
    assert (runtime_path / "ferry_runtime" / "__pycache__" / f"spool.{tag}.pyc").is_file()
    copied = (runtime_path / "ferry_runtime" / "run.py").read_bytes()
    assert copied == (RUNTIME_SRC / "run.py").read_bytes()


def test_build_is_reused_when_complete(tmp_path: Path) -> None:
    first = build_runtime_path(tmp_path)
    marker = first / "ferry_runtime" / "marker"
    marker.write_text("kept")
    assert build_runtime_path(tmp_path) == first
    assert marker.exists()  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary folders left


def test_incomplete_folder_is_replaced(tmp_path: Path) -> None:
    first = build_runtime_path(tmp_path)
    (first / "ferry_runtime" / "spool.py").unlink()  # e.g. an interrupted copy by hand
    again = build_runtime_path(tmp_path)
    assert again == first
    assert (again / "ferry_runtime" / "spool.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(build_runtime_path(tmp_path / "shared ü"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    stamp = json.loads((results[0] / STAMP).read_text())
    assert all((results[0] / f).is_file() for f in stamp["files"])
    assert len(list((tmp_path / "shared ü").iterdir())) == 1


_ISOLATED_JOB = """
import importlib, json, os, sys, sysconfig
folder = sys.argv[1]
sys.path.insert(0, folder)
modules = []
for root, _, names in os.walk(folder):
    for name in names:
        if name.endswith(".py"):
            parts = os.path.relpath(os.path.join(root, name), folder)[:-3].split(os.sep)
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
for module in sorted(modules):
    importlib.import_module(module)
from ferry_runtime import get_context
run = get_context()
run.log("loss", 0.5)
run.log("loss", 0.25, step=3)
child = run.child_run("c")
child.log("auc", 1)
child.complete()
run.upload_file("notes/run.py", os.path.join(folder, "ferry_runtime", "run.py"))
run.tag("k", "v")
try:
    run.log("huge", 10 ** 5000)
except ValueError as exc:
    print("refused:", exc)
run.flush()
homes = [folder] + [sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")]
foreign = sorted(
    name for name, module in list(sys.modules.items())
    if getattr(module, "__file__", None)
    and not any(os.path.realpath(module.__file__).startswith(os.path.realpath(h)) for h in homes)
)
print(json.dumps({"modules": sorted(modules), "foreign": foreign, "version": sys.version_info[:2]}))
"""


def _isolated_job(python: str, runtime_path: Path, spool: Path) -> dict[str, Any]:
    """Run the runtime from ``runtime_path`` alone: ``-I -S`` (no site-packages, no PYTHON*
    variables, no user site), the folder put on ``sys.path`` by hand. Logs into ``spool``."""
    env = {"FERRY_RUN_ID": "exp_1718000000_ab12cd34", "FERRY_SPOOL_DIR": str(spool)}
    done = subprocess.run(
        [python, "-I", "-S", "-c", _ISOLATED_JOB, str(runtime_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: run.log 'huge': an int of more than 4,300 digits")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def _check_isolated_spool(spool: Path, read_records: Any) -> None:
    records = read_records(spool)
    run_id = "exp_1718000000_ab12cd34"
    child = next(r for r in records if r["k"] == "child")
    assert child["parent"] == run_id and child["name"] == "c"
    assert [
        (r["run"], r["name"], r["value"], r["step"]) for r in records if r["k"] == "metric"
    ] == [
        (run_id, "loss", 0.5, None),
        (run_id, "loss", 0.25, 3),
        (child["run"], "auc", 1, None),
    ]
    assert [r["status"] for r in records if r["k"] == "status"] == ["Completed"]
    (upload,) = [r for r in records if r["k"] == "file"]
    assert upload["name"] == "notes/run.py"
    assert (spool / upload["path"]).read_bytes() == (RUNTIME_SRC / "run.py").read_bytes()
    assert next(r for r in records if r["k"] == "tags")["set"] == {"k": "v"}


def _source_modules() -> set[str]:
    modules = set()
    for path in RUNTIME_SRC.rglob("*.py"):
        parts = ("ferry_runtime", *path.relative_to(RUNTIME_SRC).with_suffix("").parts)
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_built_folder_alone_imports_and_works_in_an_isolated_interpreter(
    runtime_path: Path, spool_dir: Path, read_records: Any
) -> None:
    found = _isolated_job(sys.executable, runtime_path, spool_dir)
    shipped = set(found["modules"])
    assert _source_modules() <= shipped, _source_modules() - shipped
    assert {"azureml", "azureml.core", "azureml.core.run", "ferry"} <= shipped
    assert found["foreign"] == []  # only the folder and the standard library were imported
    _check_isolated_spool(spool_dir, read_records)


PY38 = Path.home() / ".pyenv" / "versions" / "3.8.18" / "bin" / "python"


def test_the_runtime_runs_on_python_38(
    runtime_path: Path, spool_dir: Path, read_records: Any
) -> None:
    if not PY38.exists():
        pytest.fail(
            f"Python 3.8 is needed to prove the runtime runs on it; not found at {PY38}. "
            "Install it with `pyenv install 3.8.18`.",
            pytrace=False,
        )
    found = _isolated_job(str(PY38), runtime_path, spool_dir)
    assert found["version"] == [3, 8]
    assert _source_modules() <= set(found["modules"])
    assert found["foreign"] == []
    _check_isolated_spool(spool_dir, read_records)


# -- shims in a child interpreter --------------------------------------------------------------


def test_reference_script_logs_through_the_azureml_shim(
    runtime_path: Path, spool_dir: Path, run_python: Any, job_vars: Any, read_records: Any
) -> None:
    run_python(REFERENCE_SCRIPT, pythonpath=[runtime_path], env=job_vars(spool_dir))
    (record,) = read_records(spool_dir)
    assert record["k"] == "metric" and record["run"] == "exp_1718000000_ab12cd34"
    assert (record["name"], record["value"], record["type"]) == ("a", 1, "scalar")


def test_every_import_spelling_gives_the_same_run_class(
    runtime_path: Path, run_python: Any
) -> None:
    done = run_python(
        """
        from azureml.core import Run as A
        from azureml.core.run import Run as B
        from ferry import Run as C
        import ferry_runtime
        assert A is B is C is ferry_runtime.JobRun
        run = A.get_context()
        print(type(run).__name__, run.id.startswith("OfflineRun_"))
        try:
            from azureml.core import Workspace
        except ImportError as exc:
            print("refused:", exc)
        """,
        pythonpath=[runtime_path],
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "OfflineRun True"
    assert lines[1].startswith("refused: azureml.core.Workspace is not available inside a ferry")


def _fake_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_real_azureml_sdk_wins_over_the_shim(
    runtime_path: Path, tmp_path: Path, run_python: Any
) -> None:
    real = _fake_package(
        tmp_path / "site ü",
        {
            "azureml/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
            "azureml/core/__init__.py": "REAL = True\nclass Run:\n    pass\n",
            "azureml/core/run.py": "from azureml.core import Run\n",
        },
    )
    done = run_python(
        """
        import azureml.core, azureml.core.run
        from azureml.core import Run
        print(azureml.core.REAL, azureml.core.__file__, Run is azureml.core.run.Run)
        """,
        pythonpath=[runtime_path, real],
    )
    flag, rest = done.stdout.strip().split(" ", 1)
    origin, same = rest.rsplit(" ", 1)
    assert flag == "True" and same == "True"
    assert origin.startswith(str(real))


def test_real_azureml_namespace_package_wins_and_is_merged(
    runtime_path: Path, tmp_path: Path, run_python: Any
) -> None:
    real = _fake_package(
        tmp_path / "ns",
        {"azureml/core/__init__.py": "REAL = 'namespace'\n", "azureml/dataprep/__init__.py": ""},
    )
    done = run_python(
        "import azureml.core, azureml.dataprep; print(azureml.core.REAL)",
        pythonpath=[runtime_path, real],
    )
    assert done.stdout.strip() == "namespace"


_PROBE = """
import importlib
import ferry_runtime
from azureml.core import Run
assert Run is ferry_runtime.JobRun, Run

def importable(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False

print([m for m in ("azureml.dataprep", "azureml.train") if importable(m)])
"""


@pytest.mark.parametrize("kind", ["pkgutil", "namespace"])
def test_shim_core_is_used_beside_a_real_azureml_without_core(
    runtime_path: Path, tmp_path: Path, run_python: Any, kind: str
) -> None:
    if kind == "pkgutil":
        init = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
        real = _fake_package(
            tmp_path / "regular",
            {"azureml/__init__.py": init, "azureml/dataprep/__init__.py": "DATAPREP = 1\n"},
        )
        expected = "['azureml.dataprep']"
    else:
        real = _fake_package(tmp_path / "ns", {"azureml/train/__init__.py": "TRAIN = 1\n"})
        expected = "['azureml.train']"
    done = run_python(_PROBE, pythonpath=[runtime_path, real])
    assert done.stdout.strip() == expected


def test_real_ferry_library_wins_over_the_shim(
    runtime_path: Path, tmp_path: Path, run_python: Any
) -> None:
    real = _fake_package(tmp_path / "lib", {"ferry/__init__.py": "REAL = 'library'\nRun = None\n"})
    done = run_python("import ferry; print(ferry.REAL, ferry.Run)", pythonpath=[runtime_path, real])
    assert done.stdout.split() == ["library", "None"]


def test_installed_ferry_wins_when_site_packages_are_on(
    runtime_path: Path, run_python: Any
) -> None:
    done = run_python(
        "import ferry, ferry.status; print(ferry.status.__name__)",
        pythonpath=[runtime_path],
        no_site=False,
    )
    assert done.stdout.strip() == "ferry.status"


def test_shim_ferry_is_used_without_the_library(runtime_path: Path, run_python: Any) -> None:
    done = run_python(
        "import ferry, ferry_runtime; print(ferry.Run is ferry_runtime.JobRun, ferry.__file__)",
        pythonpath=[runtime_path],
    )
    same, origin = done.stdout.split(" ", 1)
    assert same == "True"
    assert origin.strip().startswith(str(runtime_path))


# -- the in-job constraints --------------------------------------------------------------------


def _runtime_sources() -> list[Path]:
    return sorted(p for p in RUNTIME_SRC.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize(
    "path", _runtime_sources(), ids=lambda p: p.relative_to(RUNTIME_SRC).as_posix()
)
def test_runtime_imports_only_the_stdlib_and_itself(path: Path) -> None:
    """Every import, lazy ones inside functions included (which no run may reach), is of the
    standard library or relative; whether the syntax runs on 3.8 is proven by running it there."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module is not None
            assert not node.module.startswith("ferry"), f"absolute import of {node.module}"
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(
        sys.stdlib_module_names
    )


def test_public_names_are_guarded() -> None:
    assert sorted(ferry.runtime.__all__) == [
        "JobExperiment",
        "JobRun",
        "OfflineRun",
        "RunEnvironmentException",
        "SpoolWriter",
        "SubmittedRun",
        "get_context",
    ]
    for name in ferry.runtime.__all__:
        assert getattr(ferry.runtime, name) is not None
