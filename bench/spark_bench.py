"""Spark target overhead: a trivial PySpark job through `ferry submit` vs `spark-submit` directly.

Goal (issue 5): ferry's total time within 1.2× of spark-submit's. Both run the same script on
`local[2]` with the same interpreter; runs are interleaved so that load on the shared machine hits
both alike. ferry's run also snapshots the folder, records the run, ingests its metric and keeps
its log; its phase timings say where the time goes.
"""

from __future__ import annotations

import json
import os
import sys

from _common import VENV_BIN, median, run, scratch, timed, write_result

REPEAT = 7
JOB = """\
from pyspark.sql import SparkSession
from azureml.core import Run

spark = SparkSession.builder.getOrCreate()
Run.get_context().log("count", spark.range(1000).count())
spark.stop()
"""


def main() -> None:
    from ferry.targets.spark.installation import spark_home, spark_submit

    work = scratch("spark")
    src = work / "src"
    src.mkdir()
    (src / "job.py").write_text(JOB)
    (src / "job.yml").write_text(
        "experiment: bench\nsource_directory: .\nscript: job.py\n"
        "compute_target: spark\nframework: pyspark\n"
    )
    home = spark_home({})
    # both on loopback (ferry does this itself for local masters)
    direct_env = {
        "SPARK_HOME": str(home),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # a plain run does not know the runtime; give it the azureml shim the job imports
        "PYTHONPATH": _runtime_path(work),
    }
    env = {"FERRY_HOME": str(work / "ws")}
    ferry = str(VENV_BIN / "ferry")
    run([ferry, "target", "attach", "spark", "--type", "spark", "--master", "local[2]"], env)
    direct_cmd = [spark_submit(home), "--master", "local[2]", str(src / "job.py")]
    ferry_cmd = [ferry, "submit", str(src / "job.yml")]
    run(direct_cmd, direct_env, cwd=src)  # warm the page cache for the jars
    run(ferry_cmd, env)
    direct, full, outside = [], [], []
    for _ in range(REPEAT):
        direct.append(timed(lambda: run(direct_cmd, direct_env, cwd=src)))
        full.append(timed(lambda: run(ferry_cmd, env)))
        timings = _last_run_timings(ferry, env)
        outside.append(full[-1] - timings["run"])
    d, f, dmin, fmin = median(direct), median(full), min(direct), min(full)
    phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(timings.items()))
    write_result(
        "spark",
        f"""
## Spark target (issue 5)

A trivial PySpark job (SparkSession, `range(1000).count()`, one metric) on `local[2]`,
{REPEAT} interleaved runs each ({os.cpu_count()} cores, shared with other work: the fastest run
is the steadiest estimate, the median is shown too).

| command | fastest | median | ratio (fastest) | ratio (median) |
|---|---|---|---|---|
| `spark-submit --master local[2] job.py` (Spark's default logging) | {dmin:.2f} s | {d:.2f} s | 1.00× | 1.00× |
| `ferry submit job.yml` (target `spark`, framework pyspark) | {fmin:.2f} s | {f:.2f} s | {fmin / dmin:.2f}× | {f / d:.2f}× |

Ratio **{fmin / dmin:.2f}×** on the fastest runs, {f / d:.2f}× on the medians (goal ≤ 1.2×).
ferry's own share — the total less the time the spark-submit process ran — is
**{median(outside):.2f} s** at the median (snapshot, run record, supervisor start, final status,
the CLI's start and summary); the rest is Spark's.
All runs: spark-submit {", ".join(f"{x:.1f}" for x in direct)} s; ferry {", ".join(f"{x:.1f}" for x in full)} s.
Phase timings of ferry's last run: {phases}.
""",
    )


def _last_run_timings(ferry: str, env: dict[str, str]) -> dict[str, float]:
    listed = json.loads(
        run([ferry, "runs", "list", "-e", "bench", "--json", "-n", "1"], env).stdout
    )
    shown = json.loads(run([ferry, "runs", "show", listed[0]["runId"], "--json"], env).stdout)
    timings: dict[str, float] = shown["timings"]
    return timings


def _runtime_path(work: os.PathLike[str]) -> str:
    from pathlib import Path

    from ferry.runtime.layout import build_runtime_path

    return str(build_runtime_path(Path(work) / "runtime"))


if __name__ == "__main__":
    main()
