"""The hot path stays cheap: ``run.log`` costs microseconds, encoding happens at flush time."""

from __future__ import annotations

import time
from pathlib import Path

from ferry.runtime import Experiment, SpoolWriter, SubmittedRun

#: generous: a log() call measures ~1 µs on a developer machine; CI machines may be slower
BUDGET_SECONDS_PER_CALL = 15e-6


def test_log_calls_cost_microseconds_and_write_in_one_batch(spool_dir: Path) -> None:
    writer = SpoolWriter(spool_dir, flush_interval=3600, max_batch=10**9)
    run = SubmittedRun("exp_1_0123abcd", Experiment("exp"), writer)
    try:
        n = 20_000
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for i in range(n):
                run.log("loss", 0.5, step=i)
            best = min(best, (time.perf_counter() - start) / n)
        assert writer.batches_written == 0  # nothing was encoded or written on the hot path
        assert best < BUDGET_SECONDS_PER_CALL, f"{best * 1e6:.2f} µs per log() call"
        writer.flush()
        assert writer.batches_written == 1
    finally:
        writer.close()
