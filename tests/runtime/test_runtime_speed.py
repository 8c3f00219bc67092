"""The hot path stays cheap: ``run.log`` costs microseconds, encoding happens at flush time.

Wall-clock budgets are flaky on a loaded machine (this one has two cores shared by everyone), so
the figures are taken as the best of many short rounds, interleaved with a floor measured the same
way, and the test keeps measuring (up to a deadline) until a quiet slice shows up:

- absolute: the best ``log()`` round is under 15 µs per call (about 1 µs on a quiet machine), so
  only a real regression (encoding or I/O on the hot path) fails it, not a busy neighbour;
- relative: ``log()`` costs at most 5x the floor — a plain Python function that builds the same
  record dict and appends it to a deque, which is the least any ``log()`` can do (measured ratio:
  about 2). Load slows both alike, so this one holds on any machine speed.

The exact figure for the record is ``make bench``'s job, not this test's.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.runtime import JobExperiment, SpoolWriter, SubmittedRun

BUDGET_SECONDS_PER_CALL = 15e-6
MAX_RATIO_TO_FLOOR = 5.0
CALLS_PER_ROUND = 2_000
MIN_ROUNDS = 5
DEADLINE_SECONDS = 30.0


def _per_call(fn: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(CALLS_PER_ROUND):
        fn(i)
    return (time.perf_counter() - start) / CALLS_PER_ROUND


def test_log_calls_cost_microseconds_and_write_in_one_batch(spool_dir: Path) -> None:
    writer = SpoolWriter(spool_dir, flush_interval=3600, max_batch=10**9)
    run = SubmittedRun("exp_1_0123abcd", JobExperiment("exp"), writer)
    sink: collections.deque[dict[str, Any]] = collections.deque()

    def floor(i: int) -> None:
        sink.append(
            {
                "k": "metric",
                "run": "exp_1_0123abcd",
                "ts": time.time(),
                "name": "loss",
                "type": "scalar",
                "value": 0.5,
                "step": i,
                "desc": "",
            }
        )

    def log(i: int) -> None:
        run.log("loss", 0.5, step=i)

    try:
        best_log = best_floor = float("inf")
        rounds = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            best_log = min(best_log, _per_call(log))
            best_floor = min(best_floor, _per_call(floor))
            sink.clear()
            rounds += 1
            fast = best_log < BUDGET_SECONDS_PER_CALL
            cheap = best_log < MAX_RATIO_TO_FLOOR * best_floor
            if rounds >= MIN_ROUNDS and ((fast and cheap) or time.monotonic() > deadline):
                break
        figures = (
            f"best of {rounds} rounds: {best_log * 1e6:.2f} µs per log(), "
            f"floor {best_floor * 1e6:.2f} µs"
        )
        assert writer.batches_written == 0  # nothing was encoded or written on the hot path
        assert fast, figures
        assert cheap, figures
        writer.flush()
        assert writer.batches_written == 1
    finally:
        writer.close()
