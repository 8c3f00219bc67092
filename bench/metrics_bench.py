"""Metric logging: 200,000 `run.log(name, value, step=i)` calls in a job.

Measures the time spent in the script and the time until every value is queryable from the run
history, against `mlflow.log_metric` on MLflow's default local store (MLflow is installed only in
this benchmark's own environment, bench/.work/mlflow-venv).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _common import VENV_BIN, WORK, run, scratch, write_result

N = 200_000
MLFLOW_N = 2_000

SCRIPT = f"""
import time
from ferry import Run
run = Run.get_context()
t0 = time.time()
for i in range({N}):
    run.log("loss", 1.0 / (i + 1), step=i)
t1 = time.time()
print("LOOP", t0, t1, flush=True)
"""

MLFLOW_SCRIPT = f"""
import time, mlflow
mlflow.set_experiment("bench")
with mlflow.start_run():
    t0 = time.perf_counter()
    for i in range({MLFLOW_N}):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    t1 = time.perf_counter()
print("MLFLOW", t1 - t0, mlflow.get_tracking_uri())
"""


def ferry_side(work: Path) -> tuple[float, float]:
    from ferry import Experiment, ScriptRunConfig, Workspace

    src = work / "src"
    src.mkdir()
    (src / "log.py").write_text(SCRIPT)
    ws = Workspace.create(work / "ws")
    run_ = Experiment(ws, "metrics").submit(ScriptRunConfig(str(src), "log.py"))
    # poll the history until every value is queryable
    while True:
        count = (
            len(ws.store.get_metrics([run_.id]))
            if run_.get_status() in ("Running", "Finalizing", "Completed")
            else 0
        )
        if count >= N:
            t_all = time.time()
            break
        time.sleep(0.02)
    run_.wait_for_completion()
    log = (ws.runs_dir / run_.id / "user_logs" / "std_log.txt").read_text()
    t0, t1 = (float(x) for x in log.split("LOOP", 1)[1].split()[:2])
    return t1 - t0, t_all - t0


def mlflow_side(work: Path) -> tuple[float, str] | None:
    venv = WORK / "mlflow-venv"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        uv = VENV_BIN / "uv"
        try:
            run([str(uv), "venv", "-q", str(venv)])
            run([str(uv), "pip", "install", "-q", "--python", str(python), "mlflow>=2.10"])
        except subprocess.CalledProcessError as exc:
            print("mlflow could not be installed:", exc.stderr[-2000:], file=sys.stderr)
            return None
        (venv / ".complete").touch()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    out = run([str(python), "-c", MLFLOW_SCRIPT], cwd=work).stdout
    line = next(x for x in out.splitlines() if x.startswith("MLFLOW"))
    _, seconds, uri = line.split(maxsplit=2)
    return float(seconds), uri


def main() -> None:
    work = scratch("metrics")
    os.environ["FERRY_HOME"] = str(work / "home")
    in_script, end_to_end = ferry_side(work)
    ferry_rate = N / end_to_end
    script_rate = N / in_script
    ml = mlflow_side(work)
    rows = [
        f"| ferry `run.log` (in the script) | {N:,} | {in_script:.3f} s | {script_rate:,.0f}/s |",
        f"| ferry, until all are queryable | {N:,} | {end_to_end:.3f} s | {ferry_rate:,.0f}/s |",
    ]
    ratio = ""
    if ml:
        ml_seconds, uri = ml
        ml_rate = MLFLOW_N / ml_seconds
        rows.append(
            f"| `mlflow.log_metric` ({uri.split(':')[0] or 'file'} store) | {MLFLOW_N:,} | {ml_seconds:.3f} s | {ml_rate:,.0f}/s |"
        )
        ratio = f"ferry end to end is **{ferry_rate / ml_rate:,.0f}×** MLflow's rate (goal ≥ 50×)."
    write_result(
        "metrics",
        "## Metric logging (issue 2)\n\n"
        "| what | values | time | rate |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Goal: ≥ 200,000 metrics/s end to end. {ratio}\n"
        "MLflow is measured on fewer values (each call is a synchronous store write) and compared by rate.\n",
    )


if __name__ == "__main__":
    main()
