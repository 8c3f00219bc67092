"""Helpers shared by the store tests (imported as ``from store_helpers import …``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ferry.status import RunStatus
from ferry.tracking import RunRecord, RunStore

T = TypeVar("T")


def make_run(
    store: RunStore, run_id: str = "exp_1_abcdef12", status: RunStatus = RunStatus.QUEUED, **kw: Any
) -> str:
    """Create a run of experiment ``exp`` (Queued unless told); returns its id."""
    store.create_run(RunRecord(id=run_id, experiment="exp", status=status, **kw))
    return run_id


def race(calls: Sequence[Callable[[], T]], timeout: float = 60.0) -> list[T | BaseException]:
    """Run ``calls`` in threads released together by a barrier; each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException | None] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait(timeout)
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
        assert not thread.is_alive(), "a racing call did not finish"
    return results  # type: ignore[return-value]
