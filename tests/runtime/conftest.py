"""Fixtures for the in-job runtime: a spool in an awkward path, a job environment, the runtime path,
and a helper that runs a script in a child interpreter with only the runtime path on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ferry.runtime import context
from ferry.runtime.history import expand_series
from ferry.runtime.layout import build_runtime_path

RUN_ID = "exp_1718000000_ab12cd34"


@pytest.fixture(autouse=True)
def _forget_cached_runs() -> Iterator[None]:
    """Every test starts and ends without cached runs or open spool writers."""
    context.reset()
    yield
    context.reset()


@pytest.fixture
def spool_dir(awkward_dir: Path) -> Path:
    """A spool folder whose path has spaces, quotes and non-ASCII characters."""
    return awkward_dir / "run dir" / "spool"


@pytest.fixture
def job_env(spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment of a submitted job (``FERRY_RUN_ID`` …); yields the spool folder."""
    context.reset()
    for name in ("FERRY_PARENT_RUN_ID",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FERRY_RUN_ID", RUN_ID)
    monkeypatch.setenv("FERRY_EXPERIMENT", "exp")
    monkeypatch.setenv("FERRY_SPOOL_DIR", str(spool_dir))
    yield spool_dir
    context.reset()


@pytest.fixture
def no_job_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ferry job variables: get_context() is offline."""
    context.reset()
    for name in ("FERRY_RUN_ID", "FERRY_SPOOL_DIR", "FERRY_EXPERIMENT", "FERRY_PARENT_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    yield
    context.reset()


@pytest.fixture(scope="session")
def runtime_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runtime path built once for the session (in a folder with a space and unicode)."""
    return build_runtime_path(tmp_path_factory.mktemp("rt") / "runtime ü")


def _read_records(spool: Path) -> list[dict[str, Any]]:
    """Every record of every spool file, file by file, in file order."""
    records: list[dict[str, Any]] = []
    for path in sorted(spool.glob("*.jsonl")):
        text = path.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), f"{path.name} ends with a partial line"
        for line in text.splitlines():
            record = json.loads(line)
            # repeated values travel as one columnar `series` record; tests read single values
            records.extend(expand_series(record) if record["k"] == "series" else [record])
    return records


def _run_python(
    code: str,
    *,
    pythonpath: list[Path],
    env: Mapping[str, str] | None = None,
    no_site: bool = True,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child interpreter with exactly ``pythonpath`` on PYTHONPATH.

    ``no_site`` (``-S``) keeps site-packages away, so the installed ferry is not importable.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "PYTHON"))}
    child_env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    child_env["PYTHONIOENCODING"] = "utf-8"
    child_env.update(env or {})
    args = [sys.executable, *(["-S"] if no_site else []), "-c", textwrap.dedent(code)]
    done = subprocess.run(
        args, env=child_env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def _job_vars(spool: Path, run_id: str = RUN_ID, experiment: str = "exp") -> dict[str, str]:
    """The variables the runtime reads, for a child interpreter."""
    return {"FERRY_RUN_ID": run_id, "FERRY_SPOOL_DIR": str(spool), "FERRY_EXPERIMENT": experiment}


@pytest.fixture
def read_records() -> Any:
    """``read_records(spool) -> list of records`` (asserts every file ends with a newline)."""
    return _read_records


@pytest.fixture
def run_python() -> Any:
    """``run_python(code, pythonpath=[...], env=..., no_site=True)`` in a child interpreter."""
    return _run_python


@pytest.fixture
def job_vars() -> Any:
    """``job_vars(spool, run_id=..., experiment=...)``: the job variables for a child."""
    return _job_vars
