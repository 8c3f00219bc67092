"""Following a run's nodes from the supervisor: pull what each node has, stop the others when
one fails, and conclude once every node has ended.

Each step asks every node agent for what is new (logs by stream position, spool records with the
files they name, the watched folders about once a second) and writes it into the run folder
(:class:`~.streams.StreamWriter`). A node whose rank failed ends its own ranks (its watchdog
does); the other nodes are then stopped too, and the failing rank's error is repeated at the end
of the main log, so it becomes the run's. A node whose agent cannot be reached any more is lost:
the others are stopped and the run ends with :class:`~ferry.errors.JobLost`.

Example::

    follower = NodesFollower(agents, hellos, writer, job.paths, job.watched_dirs, grace=10)
    while follower.code is None:
        follower.step(0.05)
"""

from __future__ import annotations

import time
from typing import Any

import ray

from ferry.spec import RunPaths
from ferry.targets import distributed
from ferry.targets.ray.streams import StreamWriter

CALL_TIMEOUT = 120.0
WATCH_SECONDS = 1.0  # how often watched folders are looked at while the job runs


class NodesFollower:
    """The state of one run's nodes as the supervisor follows them."""

    def __init__(
        self,
        agents: list[Any],
        hellos: list[dict[str, Any]],
        writer: StreamWriter,
        paths: RunPaths,
        watched: tuple[str, ...],
        grace: float,
    ) -> None:
        self.agents, self.hellos, self.writer = agents, hellos, writer
        self.paths, self.watched, self.grace = paths, list(watched), grace
        self.ended: dict[int, dict[str, Any]] = {}
        #: why nodes were lost (the run then ends with JobLost)
        self.lost: list[str] = []
        #: the run's exit code, once every node has ended and sent everything
        self.code: int | None = None
        self._stopping = False
        self._next_watch = 0.0

    def step(self, timeout: float) -> None:
        now = time.monotonic()
        everyone_ended = len(self.ended) == len(self.agents)
        look = everyone_ended or now >= self._next_watch
        if look:
            self._next_watch = now + WATCH_SECONDS
        refs = {
            i: a.step.remote(0.0 if i in self.ended else timeout, self.watched if look else None)
            for i, a in enumerate(self.agents)
        }
        more = False
        for index, ref in refs.items():
            try:
                result = ray.get(ref, timeout=timeout + CALL_TIMEOUT)
            except (ray.exceptions.RayError, TimeoutError) as exc:
                self._node_lost(index, exc)
                continue
            self.writer.apply(result)
            more |= bool(result["more"])
            if result["ended"] is not None and index not in self.ended:
                self.ended[index] = result["ended"]
        failed = [e for e in self.ended.values() if e["failed_rank"] is not None]
        if failed and not self._stopping and len(self.ended) < len(self.agents):
            self._stopping = True
            self.stop(self.grace)
        if everyone_ended and not more:
            self.code = self._conclude()

    def stop(self, grace: float) -> None:
        """Every node still running stops its ranks (its watchdog: TERM, KILL after grace)."""
        for index, agent in enumerate(self.agents):
            if index not in self.ended:
                agent.stop.remote(grace)

    def _node_lost(self, index: int, exc: BaseException) -> None:
        if index in self.ended:
            return
        hello = self.hellos[index] if index < len(self.hellos) else {}
        what = f"lost the ferry agent on Ray node {hello.get('ip', index)}: {exc}"
        self.writer.note(f"ferry: {what}")
        self.lost.append(what)
        self.ended[index] = {"code": -9, "failed_rank": None, "failed_at": time.time()}
        self._stopping = True
        self.stop(self.grace)

    def _conclude(self) -> int:
        ends = [self.ended[i] for i in range(len(self.agents))]
        failed = [e for e in ends if e["failed_rank"] is not None]
        if failed:
            first = min(failed, key=lambda e: e["failed_at"] or 0.0)
            code, rank = int(first["code"]), int(first["failed_rank"])
            if rank != 0:  # rank 0's error is in the main log already
                try:
                    text = self.paths.rank_log(rank).read_text("utf-8", "replace")
                except OSError:
                    text = ""
                self.writer.note(distributed.failure_note(rank, code, text[-65536:]))
            return code
        lost = [e for e in ends if e["code"] != 0]
        return int(lost[0]["code"]) if lost else 0
