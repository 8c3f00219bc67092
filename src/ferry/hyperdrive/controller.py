"""The sweep controller: starts children, watches their primary metric, applies the policy.

It runs as a detached process (:mod:`ferry.hyperdrive.keeper` starts and restarts it) and keeps
no state of its own: everything it needs is in the run history — the sweep's stored
:class:`~ferry.hyperdrive.sweep.SweepSpec`, the children (``HD_…_<n>``), their values (tags on the
sweep run) and their metrics — so a controller started after ``kill -9`` resumes where the last
one was. Each tick (:data:`TICK_SECONDS`) it reads only the live children and their primary
metric (two indexed queries), judges every new interval with the policy, starts children while
fewer than ``max_concurrent_runs`` run, and ends the sweep when it is done, canceled, out of
time, or cannot produce a result (:func:`ferry.hyperdrive.state.health`). It beats the sweep
run's heartbeat like a supervisor, and writes its progress to the sweep's log (a line per child
start, end and termination, and the best so far).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from dataclasses import replace
from typing import Any

from ferry.errors import FerryError, InvalidTransition
from ferry.hyperdrive import children as kids
from ferry.hyperdrive.expressions import Scalar
from ferry.hyperdrive.lifecycle import LIVE, end_sweep, sweep_log
from ferry.hyperdrive.proposals import Sampler
from ferry.hyperdrive.state import (
    Child,
    Outcome,
    best_child,
    error_message,
    health,
    no_metric_message,
    numbers,
    outcome,
)
from ferry.hyperdrive.sweep import SweepSpec
from ferry.hyperdrive.termination import first_verdict
from ferry.spec import WorkspaceServices
from ferry.status import RunStatus
from ferry.tracking import RunQuery, RunRecord

log = logging.getLogger("ferry.hyperdrive")

TICK_SECONDS = 0.05
#: how often a policy's metric values are read while children run
METRIC_SECONDS = 0.1
#: the tag a supervisor sets while its run waits for the target's resources
STATUS_DETAILS = "ferry.status_details"


class Controller:
    """Drives one sweep from Queued to its end (see the module docstring)."""

    spec: SweepSpec
    sampler: Sampler
    record: RunRecord

    def __init__(self, workspace: WorkspaceServices, sweep_id: str) -> None:
        self.ws = workspace
        self.store = workspace.store
        self.sweep_id = sweep_id
        self.run_dir = workspace.runs_dir / sweep_id
        self.children: dict[int, Child] = {}
        self.inherited: list[tuple[dict[str, Scalar], tuple[float, ...]]] = []
        self._best_logged: tuple[str, float] | None = None
        self._next_slow = 0.0
        self._stopping: Outcome | None = None
        self._exhausted = False
        self._noted_waiting = False
        self._next_metrics = 0.0
        self._canceled: set[str] = set()
        self._parent = os.getppid()

    def say(self, message: str, kind: str = "CONTROLLER") -> None:
        sweep_log(self.ws, self.sweep_id, message, kind)

    # the life of a sweep -----------------------------------------------------------------------
    def run(self) -> RunStatus:
        from ferry.supervisor import Heartbeat

        record = self.store.get_run(self.sweep_id)
        if record.status.is_terminal():
            end_sweep(self.ws, self.sweep_id, record.status, None)  # stop orphaned children
            return record.status
        self.spec = SweepSpec.from_stored(record.definition)
        self.sampler = Sampler(self.spec)
        self.record = record
        self.store.update_run(
            self.sweep_id,
            supervisor_pid=os.getpid(),
            host=socket.gethostname(),
            heartbeat_at=time.time(),
        )
        beating = Heartbeat(self.store, self.sweep_id, lambda: RunStatus.RUNNING)
        beating.start()
        try:
            resumed = self._load(record)
            if record.status in (RunStatus.QUEUED, RunStatus.NOT_RESPONDING):
                self._set(RunStatus.RUNNING)
            self._announce(resumed)
            final = self._loop()
        except FerryError as exc:
            final = Outcome(RunStatus.FAILED, f"the sweep controller failed: {exc}", "SystemError")
        except Exception as exc:  # an internal error must still end the sweep
            log.exception("sweep controller failed")
            final = Outcome(
                RunStatus.FAILED,
                f"the sweep controller failed: {type(exc).__name__}: {exc}",
                "SystemError",
            )
        finally:
            beating.stop()
        end_sweep(self.ws, self.sweep_id, final.status, final.error())
        return self.store.get_run(self.sweep_id).status

    def _set(self, status: RunStatus) -> None:
        try:
            self.store.set_status(self.sweep_id, status)
        except InvalidTransition:
            pass

    def _announce(self, resumed: bool) -> None:
        spec = self.spec
        if resumed:
            self.say(
                f"a new controller (pid {os.getpid()}) resumes the sweep: {len(self.children)} "
                f"child run(s) so far, {sum(not c.ended for c in self.children.values())} running"
            )
            return
        policy = spec.policy.to_json()
        self.say(
            f"sweep {self.sweep_id}: {spec.sampling.method} sampling of "
            f"{', '.join(spec.sampling.names)}; primary metric {spec.metric!r} ({spec.goal}); "
            f"{spec.max_total_runs} run(s), {spec.max_concurrent_runs} at a time, at most "
            f"{spec.max_duration_minutes:g} min; policy {policy['name']} "
            f"{json.dumps(policy.get('properties', {}))}; seed {spec.seed}"
        )

    # loading the history (a fresh sweep, or a resumed one) --------------------------------------
    def _load(self, record: RunRecord) -> bool:
        params = kids.child_parameters(record)
        found = self.store.list_runs(RunQuery(parent_id=self.sweep_id))
        series = self._series([r.id for r in found])
        for r in found:
            index = kids.child_index(self.sweep_id, r.id)
            if index is None:
                continue
            self.children[index] = Child(
                index,
                r.id,
                params.get(index, {}),
                r.status,
                series.get(r.id, ()),
                error_message(r.error),
            )
        for index, values in sorted(params.items()):  # values kept, child not yet made
            if index not in self.children:
                self._make(index, values)
        for child in self.children.values():  # recorded, but its supervisor never started
            rec = next((r for r in found if r.id == child.run_id), None)
            if rec is not None and rec.status == RunStatus.QUEUED and not rec.supervisor_pid:
                kids.launch_child(self.ws, child.run_id)
        for other in self.spec.resume_from:
            self._inherit(other)
        return bool(found or params)

    def _inherit(self, sweep_id: str) -> None:
        """Results of an earlier sweep (``resume_from``): data points, never rerun."""
        try:
            other = self.store.get_run(sweep_id)
        except FerryError as exc:
            self.say(f"resume_from {sweep_id} cannot be read ({exc}); it is left out")
            return
        params = kids.child_parameters(other)
        found = self.store.list_runs(RunQuery(parent_id=sweep_id))
        series = self._series([r.id for r in found])
        for r in found:
            index = kids.child_index(sweep_id, r.id)
            if index is not None and index in params and r.status.is_terminal():
                self.inherited.append((params[index], series.get(r.id, ())))
        self.say(f"warm start: {len(found)} child run(s) of {sweep_id}")

    def _series(self, run_ids: list[str]) -> dict[str, tuple[float, ...]]:
        values: dict[str, list[Any]] = {}
        for s in self.store.get_series(run_ids, self.spec.metric):
            values.setdefault(s.run_id, []).extend(s.values)
        return {run_id: numbers(v) for run_id, v in values.items()}

    # the loop ------------------------------------------------------------------------------------
    def _loop(self) -> Outcome:
        deadline = (self.record.start_time or time.time()) + self.spec.max_duration_minutes * 60
        while True:
            now = time.time()
            slow = now >= self._next_slow
            if slow:
                self._next_slow = now + 1.0
                self._keeper_alive()
            self._refresh(slow)
            self._judge()
            self._report_best()
            if self._stopping is None:
                self._stopping = self._should_stop(slow, now, deadline)
            live = [c for c in self.children.values() if not c.ended]
            if self._stopping is not None:
                for child in live:
                    if child.run_id not in self._canceled:
                        self._canceled.add(child.run_id)
                        reason = self._stopping.message or "the sweep stopped"
                        kids.cancel_child(self.ws, child.run_id, reason)
                if not live:
                    return self._stopping
            elif not self._start_more(len(live)) and all(c.ended for c in self.children.values()):
                return self._finish()
            time.sleep(TICK_SECONDS)

    def _should_stop(self, slow: bool, now: float, deadline: float) -> Outcome | None:
        if (self.run_dir / "cancel").exists() or (
            slow and self.store.get_run(self.sweep_id).status == RunStatus.CANCEL_REQUESTED
        ):
            self.say("cancel requested: stopping the running child runs")
            return Outcome(RunStatus.CANCELED)
        if now >= deadline:
            message = (
                f"max_duration_minutes={self.spec.max_duration_minutes:g} reached: the running "
                "child runs were canceled"
            )
            self.say(message)
            return Outcome(RunStatus.CANCELED, message, "MaxDurationReached")
        verdict = health(list(self.children.values()), self.spec.metric, self.spec.max_total_runs)
        if verdict is not None and verdict.code == "NoPrimaryMetric":  # name what they logged
            ended = sum(c.status == RunStatus.COMPLETED for c in self.children.values())
            message = no_metric_message(self.spec.metric, self._logged_names(), ended)
            verdict = replace(verdict, message=message)
        if verdict is not None:
            self.say(verdict.message)
        return verdict

    def _logged_names(self) -> list[str]:
        ended = [c.run_id for c in self.children.values() if c.status == RunStatus.COMPLETED]
        if not ended:
            return []
        return sorted({s.name for s in self.store.get_series(ended[:20])})

    def _keeper_alive(self) -> None:
        """The keeper died: launch a new one, whose controller stands by until this one ends."""
        if os.getppid() != self._parent and self._parent != 1:
            from ferry.hyperdrive.keeper import launch_controller

            self._parent = os.getppid()
            launch_controller(self.ws.path, self.ws.runs_dir, self.sweep_id)
            self.say("the keeper process died; a new one stands by")

    def _refresh(self, slow: bool) -> None:
        """Read the live children and their primary metric; note the ones that ended.

        The run history is read when a child's ``done`` marker appears (a stat per child), for
        a policy every :data:`METRIC_SECONDS` (it judges each new value), and every second
        anyway (a child whose supervisor died leaves no marker) — not at every tick."""
        live = {c.run_id: c for c in self.children.values() if not c.ended}
        if not live:
            return
        now = time.monotonic()
        judging = self.spec.policy.name != "Default" and now >= self._next_metrics
        ended = any((self.ws.runs_dir / run_id / "done").exists() for run_id in live)
        if not (slow or judging or ended):
            return
        if judging:
            self._next_metrics = now + METRIC_SECONDS
        records = {
            r.id: r for r in self.store.list_runs(RunQuery(parent_id=self.sweep_id, statuses=LIVE))
        }
        series = self._series(list(live))
        self._note_waiting(records)
        for run_id, child in live.items():
            rec = records.get(run_id) or self.store.get_run(run_id)
            updated = replace(child, status=rec.status, values=series.get(run_id, child.values))
            if rec.status.is_terminal():
                updated = replace(updated, error=error_message(rec.error))
                self._ended(updated, rec)
            self.children[child.index] = updated

    def _note_waiting(self, records: dict[str, RunRecord]) -> None:
        """Say once when the target cannot hold all the children asked at once (they queue)."""
        if self._noted_waiting:
            return
        for record in records.values():
            why = record.tags.get(STATUS_DETAILS)
            if record.status == RunStatus.QUEUED and why:
                self._noted_waiting = True
                running = sum(r.status == RunStatus.RUNNING for r in records.values())
                self.say(
                    f"{record.id} waits: {why}. The target {record.target!r} holds {running} of "
                    f"the {self.spec.max_concurrent_runs} child runs asked at once; the others "
                    "queue until it has room (lower max_concurrent_runs to match it)"
                )
                return

    def _ended(self, child: Child, record: RunRecord) -> None:
        best = child.best(self.spec.maximize)
        shown = (
            f"{self.spec.metric} {best:g}"
            if best is not None
            else f"no {self.spec.metric!r} logged"
        )
        why = record.tags.get("ferry.hyperdrive.terminated")
        if record.status == RunStatus.FAILED and child.error:
            shown += f"; {child.error}"
        self.say(f"{child.run_id} {record.status.value}: {shown}" + (f" ({why})" if why else ""))

    def _judge(self) -> None:
        """Every interval a live child reached since the last look, judged by the policy."""
        policy = self.spec.policy
        if policy.name == "Default":
            return
        for child in list(self.children.values()):
            if child.ended or len(child.values) <= child.seen:
                continue
            others = [c.values for c in self.children.values() if c.index != child.index]
            others += [values for _, values in self.inherited]
            verdict = first_verdict(policy, self.spec.maximize, child.values, others, child.seen)
            self.children[child.index] = replace(child, seen=len(child.values))
            if verdict is not None and kids.cancel_child(self.ws, child.run_id, verdict.reason):
                self._canceled.add(child.run_id)
                self.say(
                    f"{child.run_id} terminated at interval {verdict.interval}: {verdict.reason}",
                    "POLICY",
                )

    def _report_best(self) -> None:
        best = best_child(self.children.values(), self.spec.maximize)
        if best is None:
            return
        value = best.best(self.spec.maximize)
        assert value is not None
        if self._best_logged != (best.run_id, value):
            self._best_logged = (best.run_id, value)
            self.say(
                f"best so far: {best.run_id} {self.spec.metric} {value:g} {json.dumps(dict(best.params))}"
            )

    # starting children ---------------------------------------------------------------------------
    def _start_more(self, live: int) -> bool:
        """Start children up to the limits; False once no child will ever be started again."""
        while live < self.spec.max_concurrent_runs:
            index = len(self.children)
            if index >= self.spec.max_total_runs:
                return False
            params = self.sampler.next(index, list(self.children.values()), self.inherited)
            if params is None:
                if not self._exhausted:
                    self._exhausted = True
                    self.say("the grid is done: every combination has a run")
                return False
            self._make(index, params)
            live += 1
        return len(self.children) < self.spec.max_total_runs

    def _make(self, index: int, params: dict[str, Scalar]) -> None:
        run_id = kids.start_child(self.ws, self.record, self.spec, index, params)
        status = self.store.get_run(run_id).status
        self.children[index] = Child(index, run_id, params, status)
        self.say(f"{run_id} started: {json.dumps(params)}", "GENERATOR")

    def _finish(self) -> Outcome:
        result = outcome(list(self.children.values()), self.spec.metric, self._logged_names())
        best = best_child(self.children.values(), self.spec.maximize)
        if best is not None:
            self.say(
                f"best run: {best.run_id} {self.spec.metric} {best.best(self.spec.maximize):g} "
                f"{json.dumps(dict(best.params))}"
            )
        return result


def main(workspace_path: str, sweep_id: str) -> int:
    """A controller process: wait for the sweep's controller lock, then drive the sweep."""
    from ferry.hyperdrive.keeper import CONTROLLER_LOCK, lock
    from ferry.workspace import Workspace

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ws = Workspace(workspace_path)
    held = lock(ws.runs_dir / sweep_id / CONTROLLER_LOCK, wait=True)  # a standby waits here
    try:
        Controller(ws, sweep_id).run()
    finally:
        if held is not None:
            os.close(held)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
