"""Submit overhead: `ferry submit` (waiting for completion) vs `python script.py`.

Goal (issue 2): under 0.3 s of overhead at the median. The run's own phase timings say where
the time goes.
"""

from __future__ import annotations

import json
import sys

from _common import VENV_BIN, median, run, scratch, timed, write_result

REPEAT = 15


def main() -> None:
    work = scratch("submit")
    src = work / "src"
    src.mkdir()
    (src / "hello.py").write_text("print('hello')\n")
    env = {"FERRY_HOME": str(work / "ws")}
    ferry = str(VENV_BIN / "ferry")
    run([ferry, "submit", str(src / "hello.py"), "-e", "warmup"], env)  # creates the workspace
    bare, full = [], []
    for _ in range(REPEAT):
        bare.append(timed(lambda: run([sys.executable, str(src / "hello.py")])))
        full.append(
            timed(lambda: run([ferry, "submit", str(src / "hello.py"), "-e", "bench"], env))
        )
    listed = json.loads(
        run([ferry, "runs", "list", "-e", "bench", "--json", "-n", "1"], env).stdout
    )
    shown = json.loads(run([ferry, "runs", "show", listed[0]["runId"], "--json"], env).stdout)
    timings = shown["timings"]
    b, f = median(bare), median(full)
    phases = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(timings.items()))
    write_result(
        "submit",
        f"""
## Submit overhead (issue 2)

A script that prints one line, {REPEAT} runs each, median wall time.

| command | median | ratio |
|---|---|---|
| `python hello.py` | {b * 1000:.0f} ms | 1.0× |
| `ferry submit hello.py` (snapshot, run, wait, summary) | {f * 1000:.0f} ms | {f / b:.1f}× |

Overhead: **{(f - b) * 1000:.0f} ms** at the median (goal < 300 ms).
Where the time goes in the last run (phase timings kept on the run): {phases}.
""",
    )


if __name__ == "__main__":
    main()
