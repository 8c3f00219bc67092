"""Small helpers shared by the benchmarks (timing, medians, a scratch folder, result files)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
WORK = HERE / ".work"
RESULTS = HERE / "results"
VENV_BIN = Path(sys.executable).parent


def scratch(name: str) -> Path:
    path = WORK / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median(values: list[float]) -> float:
    return statistics.median(values)


def run(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(cmd, env=full_env, cwd=cwd, capture_output=True, text=True, check=True)


def write_result(name: str, markdown: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(markdown.strip() + "\n")
    print(markdown)
