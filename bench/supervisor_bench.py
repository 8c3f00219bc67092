"""Supervisor tests with the fake target (issue 10): a run supervised in the test's process with
the scripted fake target, against the same run through the local target (a detached supervisor
and a real job). The fake is what makes the supervisor's own tests fast."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from _common import median, scratch, write_result

REPEAT = 20


def main() -> None:
    work = scratch("supervisor")
    os.environ["FERRY_HOME"] = str(work / "ws")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from ferry import ComputeTarget, Experiment, ScriptRunConfig, Workspace
    from ferry.status import RunStatus
    from ferry.testing.fake import FakeCompute, supervise_here
    from ferry.tracking import RunRecord

    ws = Workspace.from_config()
    spool = [{"k": "metric", "name": "m", "value": i} for i in range(3)]
    ComputeTarget.attach(ws, "fake", FakeCompute.attach_configuration(spool=spool, log=["hi"]))
    src = work / "src"
    src.mkdir()
    (src / "t.py").write_text(
        "from ferry import Run\nr = Run.get_context()\nfor i in range(3):\n    r.log('m', i)\nprint('hi')\n"
    )
    fake, real = [], []
    for i in range(REPEAT):
        run_id = f"bench_{int(time.time())}_{i:08x}"
        ws.store.create_run(
            RunRecord(
                id=run_id, experiment="bench", status=RunStatus.QUEUED, target="fake",
                created_at=time.time(), heartbeat_at=time.time(),
                definition={"script": "t.py", "target": "fake"}, run_dir=str(ws.runs_dir / run_id),
            )
        )  # fmt: skip
        t = time.perf_counter()
        assert supervise_here(ws, run_id) == RunStatus.COMPLETED
        fake.append(time.perf_counter() - t)
        t = time.perf_counter()
        run = Experiment(ws, "bench").submit(ScriptRunConfig(str(src), "t.py"))
        assert run.wait_for_completion()["status"] == "Completed"
        real.append(time.perf_counter() - t)
    f, r = median(fake), median(real)
    write_result(
        "supervisor",
        f"""
## Supervisor tests with the fake target (issue 10)

One run that logs 3 metrics and a line, median of {REPEAT}: supervised in the calling process
with `ferry.testing.fake` (no process, no snapshot) against a real submit to the local target
(snapshot, detached supervisor, watchdog, job) and `wait_for_completion`.

| how | median | ratio |
|---|---|---|
| local target, real job (the anchor) | {r * 1000:.0f} ms | 1.0× |
| fake target, in-process supervisor | {f * 1000:.0f} ms | **{r / f:.0f}× faster** |

Goal: at least 5× faster.
""",
    )


if __name__ == "__main__":
    main()
