"""Environments (issue 4): reuse of a cached environment, and a cold build of ferry-sklearn.

* reuse: ``resolve()`` of an environment that is already built, as a run's Preparing phase does
  it (goal: under 50 ms, no installer started);
* cold build of the curated ``ferry-sklearn`` (numpy, pandas, scikit-learn, scipy, matplotlib,
  joblib, pinned) with ferry vs ``python -m venv`` + ``pip install`` of the same pins, both with
  the machine's pip configuration (same indexes), both byte-compiling; once with empty package
  caches (everything downloaded/unpacked) and once with warm caches (the usual case);
* ``mlflow run --env-manager virtualenv`` is not measured: mlflow is not on this machine's local
  indexes and its virtualenv manager installs mlflow itself into every project environment from
  PyPI, so it does not work offline here.

Writes bench/results/env.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median, scratch, write_result

from ferry.envbuild import find_python, resolve
from ferry.envbuild.curated import curated_spec
from ferry.environment import Environment

REUSE_RUNS = 200


def sklearn_env() -> Environment:
    spec = curated_spec("ferry-sklearn")
    assert spec is not None
    return Environment.from_dict(spec)


def pins() -> list[str]:
    return list(sklearn_env().python.conda_dependencies.pip_packages)


def ferry_build(root: Path, uv_cache: Path) -> tuple[float, str]:
    os.environ["UV_CACHE_DIR"] = str(uv_cache)
    try:
        t = time.perf_counter()
        resolved = resolve(sklearn_env(), root)
        seconds = time.perf_counter() - t
    finally:
        os.environ.pop("UV_CACHE_DIR", None)
    assert resolved.built
    return seconds, resolved.lock or ""


def pip_build(folder: Path, pip_cache: Path) -> tuple[float, str]:
    python = find_python("3.11").path
    env = {**os.environ, "PIP_CACHE_DIR": str(pip_cache)}
    t = time.perf_counter()
    subprocess.run([python, "-m", "venv", str(folder)], check=True, env=env)
    subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "-q", *pins()],
        check=True,
        env=env,
        stderr=subprocess.DEVNULL,  # pip warns about each file:// index page it cannot find
    )
    seconds = time.perf_counter() - t
    freeze = subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "freeze"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return seconds, freeze


def measure_reuse(root: Path) -> tuple[float, float, float]:
    env = sklearn_env()
    resolve(env, root)
    spec = env.to_dict()
    times = []
    for _ in range(REUSE_RUNS):
        t = time.perf_counter()
        resolved = resolve(Environment.from_dict(spec), root)  # as a run: from its definition
        times.append(time.perf_counter() - t)
        assert not resolved.built
    times.sort()
    return median(times), times[int(len(times) * 0.95)], max(times)


def first_imports(folders: list[Path], runs: int = 3) -> list[float]:
    """Import time of the whole stack per environment (median; after one warm-up each, which
    also builds matplotlib's font cache once for all)."""
    code = "import numpy, pandas, sklearn, scipy, matplotlib, joblib"
    times: list[list[float]] = [[] for _ in folders]
    for attempt in range(runs + 1):
        for i, folder in enumerate(folders):
            t = time.perf_counter()
            subprocess.run([str(folder / "bin" / "python"), "-c", code], check=True)
            if attempt:
                times[i].append(time.perf_counter() - t)
    return [median(t) for t in times]


UNCOMPILED = (
    "import numpy, pandas, sklearn, scipy, matplotlib, joblib, sys, os, importlib.util\n"
    "files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]\n"
    "print(sum(1 for f in files if f.endswith('.py')\n"
    "          and not os.path.exists(importlib.util.cache_from_source(f))))\n"
)


def uncompiled(folder: Path) -> int:
    """Modules the stack imports that have no bytecode (each would be compiled at every start)."""
    out = subprocess.run(
        [str(folder / "bin" / "python"), "-c", UNCOMPILED],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def packages(lock: str) -> dict[str, str]:
    out = {}
    for line in lock.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            out[name.lower().replace("_", "-")] = version.strip()
    return out


def main() -> None:
    work = scratch("env")
    rows = []
    # cold caches: empty uv cache vs empty pip cache
    ferry_cold, lock = ferry_build(work / "ferry-cold", work / "uv-cache")
    pip_cold, freeze = pip_build(work / "pip-cold", work / "pip-cache")
    rows.append(("cold build, empty package caches", ferry_cold, pip_cold))
    # warm caches: the same caches, new environments (median of 2)
    ferry_warm = statistics.median(
        ferry_build(work / f"ferry-warm-{i}", work / "uv-cache")[0] for i in range(2)
    )
    pip_warm = statistics.median(
        pip_build(work / f"pip-warm-{i}", work / "pip-cache")[0] for i in range(2)
    )
    rows.append(("cold build, warm package caches", ferry_warm, pip_warm))
    same = packages(lock) == packages(freeze)
    reuse_median, reuse_p95, reuse_max = measure_reuse(work / "ferry-cold")
    built = next((work / "ferry-cold").glob("[0-9a-f]*[0-9a-f]"))
    import_ferry, import_pip = first_imports([built, work / "pip-cold"])
    missing_ferry, missing_pip = uncompiled(built), uncompiled(work / "pip-cold")

    lines = [
        "## Environments (issue 4)",
        "",
        f"Curated `ferry-sklearn` ({', '.join(pins())}) on Python 3.11, {os.cpu_count()} cores; "
        "package sources: this machine's pip configuration (local file indexes + PyPI), used by "
        "both sides. Both byte-compile (pip every file; ferry all but the packages' own test "
        "suites). ferry = `uv venv` + `uv pip install` + compileall + lock + atomic publish.",
        "",
        "| what | ferry | anchor | time | ratio |",
        "|---|---|---|---|---|",
        f"| reuse a built environment (`resolve`, median of {REUSE_RUNS}) | "
        f"{reuse_median * 1000:.2f} ms | goal | 50 ms | {reuse_median / 0.05:.3f}× |",
    ]
    for label, ferry_s, pip_s in rows:
        lines.append(
            f"| {label} | {ferry_s:.1f} s | `python -m venv` + `pip install` | {pip_s:.1f} s "
            f"| {ferry_s / pip_s:.2f}× |"
        )
    lines += [
        "",
        f"- reuse: p95 {reuse_p95 * 1000:.2f} ms, max {reuse_max * 1000:.2f} ms; no installer "
        "is started (two stat calls, a touch, reading the lock).",
        f"- both sides installed the same versions: {'yes' if same else 'NO'} "
        f"({len(packages(lock))} packages).",
        f"- importing the whole stack (median of 3; the machine is shared, so within noise): "
        f"ferry {import_ferry:.2f} s, venv + pip {import_pip:.2f} s; imported modules without "
        f"bytecode: ferry {missing_ferry}, venv + pip {missing_pip}.",
        "- `mlflow run --env-manager virtualenv`: not measured; mlflow is not on this machine's "
        "local indexes and its virtualenv manager installs mlflow into each project environment "
        "from PyPI, so it cannot run offline here.",
    ]
    write_result("env", "\n".join(lines))


if __name__ == "__main__":
    main()
