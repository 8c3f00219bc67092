"""Builds across processes: one build for concurrent runs, nothing half-published after kill -9,
and old and new library stacks side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from envbuild_helpers import pip_env, run_python

from ferry.envbuild import EnvCache, resolve
from ferry.environment import Environment

BUILDER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from ferry.environment import Environment
    from ferry.envbuild import resolve

    root, spec, go = Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    resolved = resolve(Environment.from_dict(spec).to_spec(), root, lambda line: print(line, flush=True))
    print(json.dumps({"built": resolved.built, "python": resolved.python}), flush=True)
    """
)


def start_builder(tmp_path: Path, root: Path, env: Environment, go: Path) -> subprocess.Popen[str]:
    script = tmp_path / "builder.py"
    script.write_text(BUILDER)
    return subprocess.Popen(
        [sys.executable, str(script), str(root), json.dumps(env.to_dict()), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_concurrent_builds_of_one_spec_are_one_build(tmp_path: Path) -> None:
    root, go = tmp_path / "envs", tmp_path / "go"
    env = pip_env("together", "six==1.17.0", "idna==3.20")
    procs = [start_builder(tmp_path, root, env, go) for _ in range(2)]
    go.touch()
    results, logs = [], []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out
        results.append(json.loads(out.strip().splitlines()[-1]))
        logs.append(out)
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["python"] == results[1]["python"]
    waiter = logs[[r["built"] for r in results].index(False)]
    assert "another process is building" in waiter or "reusing" in waiter
    assert "uv pip install" not in waiter and "Installed" not in waiter
    assert len(EnvCache(root).published()) == 1


def _uv_processes_in(folder: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if folder in cmdline:
                found.append(int(pid))
    return found


@pytest.mark.slow
def test_a_build_killed_midway_publishes_nothing_and_the_next_build_succeeds(
    tmp_path: Path,
) -> None:
    root, go = tmp_path / "envs", tmp_path / "go"
    env = pip_env("killed", "numpy==1.26.4")  # large enough to be caught while installing
    go.touch()
    proc = start_builder(tmp_path, root, env, go)
    deadline = time.monotonic() + 120
    temporary: Path | None = None
    while time.monotonic() < deadline and temporary is None:
        for candidate in root.glob(".tmp-*") if root.exists() else []:
            if (candidate / "bin" / "python").exists():
                temporary = candidate
        time.sleep(0.01)
    assert temporary is not None, "the build never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    digest = env.spec_hash() or ""
    cache = EnvCache(root)
    assert cache.lookup(digest) is None
    assert not (root / digest).exists()
    time.sleep(0.5)
    assert _uv_processes_in(temporary.name) == [], "uv outlived the killed builder"

    resolved = resolve(env.to_spec(), root)
    assert resolved.built
    assert run_python(resolved, "import numpy; print(numpy.__version__)") == "1.26.4"
    assert not temporary.exists(), "the next build cleans up after the killed one"


@pytest.mark.slow
def test_old_and_new_library_stacks_run_side_by_side(workspace: Any, tmp_path: Path) -> None:
    old = pip_env("old-stack", "numpy==1.23.5", "scipy==1.10.1", "scikit-learn==1.6.1")
    new = Environment.get(workspace, "ferry-sklearn")
    resolved = [resolve(e.to_spec(), workspace.envs_dir) for e in (old, new)]
    assert resolved[0].spec_hash != resolved[1].spec_hash
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy, sklearn\n"
        "from sklearn.linear_model import LinearRegression\n"
        "x = numpy.arange(10.0).reshape(-1, 1)\n"
        "model = LinearRegression().fit(x, 2 * x.ravel() + 1)\n"
        "print(numpy.__version__, sklearn.__version__, round(float(model.coef_[0]), 3))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    procs = [
        subprocess.Popen(
            [r.python, str(script)],
            env={**env, **r.variables},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in resolved
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert outputs[0][0].split() == ["1.23.5", "1.6.1", "2.0"]
    assert outputs[1][0].split() == ["2.4.6", "1.9.1", "2.0"]
    assert "numpy==1.23.5" in (resolved[0].lock or "")
    assert "scikit-learn==1.9.1" in (resolved[1].lock or "")
