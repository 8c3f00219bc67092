"""With the real azureml-core in a job's environment, ``Run.get_context()`` is still ferry's run.

These tests install the real wheel from PyPI, once, into a virtual environment cached outside the
repository (``~/.cache/ferry-tests/azureml-core-<python>``, reused while it is complete), then run
scripts in it with the runtime path on ``PYTHONPATH``, as a target would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ferry-tests"
PYTHON_TAG = f"{sys.version_info[0]}.{sys.version_info[1]}"
VENV = CACHE / f"azureml-core-{PYTHON_TAG}"
COMPLETE = VENV / "ferry-complete"
RUN_ID = "exp_1718000000_ab12cd34"

#: the lines the real SDK's offline run prints instead of recording (azureml-core 1.61)
OFFLINE_LINE = "Attempted to log scalar metric"


def _uv() -> str:
    found = Path(sys.executable).with_name("uv")
    return str(found) if found.exists() else shutil.which("uv") or "uv"


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """The interpreter of a cached virtual environment holding the real azureml-core."""
    python = VENV / "bin" / "python"
    if COMPLETE.is_file() and python.exists():
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f".azureml-core-{PYTHON_TAG}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    steps = [
        [_uv(), "venv", "-q", "--python", sys.executable, str(building)],
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(building / "bin" / "python"),
            "azureml-core",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            pytest.fail(
                f"could not install azureml-core from PyPI ({' '.join(step[:3])} failed):\n"
                f"{done.stderr[-2000:]}\nThese tests need the package index (PyPI or a mirror "
                f"in pip.conf); or build {VENV} by hand with "
                f"`uv venv --python {sys.executable} {VENV} && uv pip install --python "
                f"{VENV}/bin/python azureml-core && touch {COMPLETE}`.",
                pytrace=False,
            )
    (building / COMPLETE.name).write_text("azureml-core\n")
    shutil.rmtree(VENV, ignore_errors=True)
    os.rename(building, VENV)  # a venv's interpreter finds its packages relative to itself
    return python


def _run_in_sdk(
    python: Path, code: str, runtime_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "PYTHON"))}
    child_env.update(PYTHONPATH=str(runtime_path), PYTHONIOENCODING="utf-8", **env)
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


_JOB = """
{imports}
import azureml.core, azureml.core.run, azureml.core.workspace
run = Run.get_context()
run.log("loss", 0.5)
run.log("loss", 0.25, step=2)
run.log_list("acc", [0.1, 0.2])
run.tag("team", "a")
with run.child_run("fold-1") as child:
    child.log("auc", 0.9)
# the rest of the SDK is the real one
assert azureml.core.__file__.startswith(sys.prefix), azureml.core.__file__
assert azureml.core.Workspace is azureml.core.workspace.Workspace
from azureml.core import ScriptRun
assert ScriptRun.get_context() is run
print(type(run).__module__, type(run).__name__)
"""

SPELLINGS = {
    "from azureml.core import Run": "import sys\nfrom azureml.core import Run",
    "from azureml.core.run import Run": "import sys\nfrom azureml.core.run import Run",
    "azureml.core.Run": "import sys\nimport azureml.core as core\nRun = core.Run",
}


@pytest.mark.parametrize("spelling", list(SPELLINGS))
def test_the_real_sdks_get_context_records_into_the_ferry_run(
    sdk_python: Path,
    runtime_path: Path,
    spool_dir: Path,
    job_vars: Any,
    read_records: Any,
    spelling: str,
) -> None:
    done = _run_in_sdk(
        sdk_python,
        _JOB.format(imports=SPELLINGS[spelling]),
        runtime_path,
        job_vars(spool_dir, run_id=RUN_ID),
    )
    assert done.stdout.splitlines()[-1] == "ferry_runtime.context SubmittedRun"
    assert OFFLINE_LINE not in done.stdout
    records = read_records(spool_dir)
    ours = [(r["name"], r["value"], r["step"]) for r in records if r["k"] == "metric"]
    assert ours == [
        ("loss", 0.5, None),
        ("loss", 0.25, 2),
        ("acc", [0.1, 0.2], None),
        ("auc", 0.9, None),
    ]
    assert next(r for r in records if r["k"] == "tags")["set"] == {"team": "a"}
    child = next(r for r in records if r["k"] == "child")
    assert child["parent"] == RUN_ID and child["name"] == "fold-1"


def test_outside_a_ferry_run_the_real_sdk_is_untouched(
    sdk_python: Path, runtime_path: Path
) -> None:
    done = _run_in_sdk(
        sdk_python,
        """
        import sys
        from azureml.core import Run
        from azureml.core.run import _OfflineRun
        run = Run.get_context()
        assert type(run) is _OfflineRun, type(run)
        assert Run.get_context.__func__.__module__ == "azureml.core.run"
        assert not any(hasattr(f, "_ferry_get_context_patched") for f in sys.meta_path)
        run.log("loss", 0.5)
        run.log_list("acc", [0.1])
        run.tag("team", "a")
        """,
        runtime_path,
        {},
    )
    assert done.stdout.splitlines() == [
        "Attempted to log scalar metric loss:",
        "0.5",
        "Attempted to log list metric acc:",
        "[0.1]",
        "Attempted to add tag team with value a",
    ]


def test_a_namespace_azureml_core_is_patched_too(
    runtime_path: Path,
    tmp_path: Path,
    spool_dir: Path,
    run_python: Any,
    job_vars: Any,
    read_records: Any,
) -> None:
    """An SDK installed as a PEP 420 namespace (no ``azureml/__init__.py``) is merged, not
    replaced; its ``azureml.core.run.Run`` gets ferry's ``get_context`` all the same."""
    core = tmp_path / "site" / "azureml" / "core"
    core.mkdir(parents=True)
    (core / "__init__.py").write_text("from .run import Run\nREAL = True\n")
    (core / "run.py").write_text(
        "class Run:\n"
        "    @classmethod\n"
        "    def get_context(cls, allow_offline=True, **kwargs):\n"
        "        return 'the offline run'\n"
    )
    code = """
        import azureml.core
        from azureml.core import Run
        assert azureml.core.REAL
        Run.get_context().log("m", 1)
        print(Run.get_context())
    """
    done = run_python(code, pythonpath=[runtime_path, core.parent.parent], env=job_vars(spool_dir))
    assert done.stdout.startswith("SubmittedRun(Experiment: exp")
    assert [(r["name"], r["value"]) for r in read_records(spool_dir)] == [("m", 1)]
    outside = run_python(
        code.replace('.log("m", 1)', ""), pythonpath=[runtime_path, core.parent.parent]
    )
    assert outside.stdout.strip() == "the offline run"
