"""The supervisor: owns one run's life on the machine that drives it.

Prepare (snapshot + environment) → launch through the target → follow (ingest the spool, mirror
./logs, heartbeat, honour cancel and the time limit) → finalize (outputs become artifacts) → the
final status. It runs detached from the submitting terminal (:func:`launch_detached`), so
``--no-wait`` and a closed terminal do not end the run.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.errors import FerryError, InvalidTransition
from ferry.ingest import SpoolIngestor, artifact_dir
from ferry.liveness import heartbeat_interval
from ferry.status import RunStatus
from ferry.targets.base import LOG_NAME, JobSpec, Target
from ferry.tracking import ArtifactRecord, RunStore

log = logging.getLogger("ferry.supervisor")

DONE_MARKER = "done"
CANCEL_MARKER = "cancel"
TICK_SECONDS = 0.05


def kill_grace_seconds() -> float:
    try:
        return float(os.environ.get("FERRY_KILL_GRACE_SECONDS", "10"))
    except ValueError:
        return 10.0


def error_from_log(log_path: Path, exit_code: int) -> dict[str, Any]:
    """The run's error: the traceback's last line as message, and the log's tail."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(max(0, log_path.stat().st_size - 65536))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    message = ""
    starts = [
        i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")
    ]
    if starts:
        tb = [line for line in lines[starts[-1] :] if line.strip()]
        message = tb[-1].strip() if tb else ""
    if exit_code < 0:
        reason = f"the script was killed by signal {-exit_code}"
    else:
        reason = f"the script exited with code {exit_code}"
    tail = lines[-20:]
    return {
        "error": {
            "code": "UserError",
            "message": f"{message} ({reason})" if message else reason,
        },
        "exitCode": exit_code,
        "logTail": "\n".join(tail),
    }


class Supervisor:
    """Drives one run through a target from Queued to a terminal status."""

    def __init__(self, workspace: Any, run_id: str) -> None:
        self.ws = workspace
        self.store: RunStore = workspace.store
        self.run_id = run_id
        self.run_dir = workspace.runs_dir / run_id
        self.timings: dict[str, float] = {}
        self._cancel_seen = False
        #: the status this supervisor last set (restored after a NotResponding spell)
        self.phase = RunStatus.QUEUED

    # helpers ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """A line of ferry's own in the run's log (preparation, environment builds)."""
        path = self.run_dir / LOG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(message.rstrip("\n") + "\n")

    def _status(self, status: RunStatus, **kwargs: Any) -> bool:
        try:
            self.store.set_status(self.run_id, status, **kwargs)
            self.phase = status
            return True
        except InvalidTransition:
            current = self.store.get_run(self.run_id).status
            if current == RunStatus.CANCEL_REQUESTED:
                self._cancel_seen = True
            log.info("run %s: %s -> %s refused", self.run_id, current, status)
            return False

    def _cancel_requested(self, check_store: bool) -> bool:
        if self._cancel_seen or (self.run_dir / CANCEL_MARKER).exists():
            self._cancel_seen = True
        elif check_store:
            self._cancel_seen = self.store.get_run(self.run_id).status == RunStatus.CANCEL_REQUESTED
        return self._cancel_seen

    # the life of a run -------------------------------------------------------------------------
    def run(self) -> RunStatus:
        record = self.store.get_run(self.run_id)
        if record.status.is_terminal():
            return record.status
        started = time.time()
        self.timings = dict(record.timings)
        self.timings["queue"] = max(0.0, started - record.created_at)
        self.store.update_run(
            self.run_id, supervisor_pid=os.getpid(), host=socket.gethostname(), heartbeat_at=started
        )
        job = JobSpec(
            run_id=record.id,
            experiment=record.experiment,
            run_dir=self.run_dir,
            definition=record.definition,
            snapshot_id=(record.snapshot or {}).get("id"),
            source_dir=Path(record.definition["sourceDirectory"])
            if record.definition.get("sourceDirectory")
            else None,
            env_vars={
                str(k): str(v)
                for k, v in (record.definition.get("environmentVariables") or {}).items()
            },
            parent_run_id=record.parent_id,
        )
        target: Target | None = None
        beating = _Heartbeat(self.store, self.run_id, lambda: self.phase)
        beating.start()
        try:
            from ferry.compute import resolve_target

            target = resolve_target(self.ws, record.target)
            self._drive(target, job)
        except FerryError as exc:
            self.log(f"ferry: {exc}")
            self._fail({"error": {"code": type(exc).__name__, "message": str(exc)}})
        except Exception as exc:  # an internal error must still end the run
            self.log("ferry: internal error\n" + traceback.format_exc())
            self._fail(
                {"error": {"code": "SystemError", "message": f"{type(exc).__name__}: {exc}"}}
            )
        finally:
            beating.stop()
            if target is not None:
                try:
                    target.close()
                except Exception:
                    log.exception("closing target")
            self.store.update_run(self.run_id, timings=self.timings)
            (self.run_dir / DONE_MARKER).touch()
        return self.store.get_run(self.run_id).status

    def _fail(self, error: dict[str, Any]) -> None:
        current = self.store.get_run(self.run_id).status
        if not current.is_terminal():
            final = (
                RunStatus.CANCELED if current == RunStatus.CANCEL_REQUESTED else RunStatus.FAILED
            )
            self._status(final, error=error)

    def _drive(self, target: Target, job: JobSpec) -> RunStatus:
        t = time.monotonic()
        if self._cancel_requested(True) or not self._status(RunStatus.PREPARING):
            return self._finish(target, job, None, canceled=True, timed_out=False)
        facts = target.prepare(job, _PrepareLog(self))
        self.timings["prepare"] = time.monotonic() - t
        self._keep_environment(facts)
        if self._cancel_requested(True) or not self._status(RunStatus.STARTING):
            return self._finish(target, job, None, canceled=True, timed_out=False)
        log_size = job.log_path.stat().st_size if job.log_path.exists() else 0
        t_start = time.monotonic()
        started_facts = target.start(job)
        facts = {k: v for k, v in started_facts.items() if k in ("job_pgid", "host")}
        if facts:
            self.store.update_run(self.run_id, **facts)
        self._status(RunStatus.RUNNING)
        exit_code, canceled, timed_out = self._follow(target, job, log_size, t_start)
        self.timings["run"] = time.monotonic() - t_start
        return self._finish(target, job, exit_code, canceled=canceled, timed_out=timed_out)

    def _keep_environment(self, facts: dict[str, Any]) -> None:
        """The environment's hash as a property, its resolved lock as an artifact."""
        if facts.get("env_hash"):
            self.store.add_properties(
                self.run_id, {"ferry.environment.hash": str(facts["env_hash"])}
            )
        if facts.get("env_lock"):
            dest = artifact_dir(self.ws.path, self.run_id) / "environment" / "lock.txt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(str(facts["env_lock"]), encoding="utf-8")
            self.store.add_artifacts(
                [
                    ArtifactRecord(
                        self.run_id,
                        "environment/lock.txt",
                        str(dest.relative_to(self.ws.path)),
                        dest.stat().st_size,
                    )
                ]
            )

    def _follow(
        self, target: Target, job: JobSpec, log_size: int, t_start: float
    ) -> tuple[int, bool, bool]:
        ingestor = SpoolIngestor(self.store, self.run_id, job.spool_dir, self.ws.path)
        self._ingestor = ingestor
        limit = job.definition.get("maxRunDurationSeconds")
        deadline = t_start + float(limit) if limit else None
        next_slow = time.monotonic()
        canceled = timed_out = False
        mirror = _Mirror(self.store, self.run_id, self.ws.path)
        while True:
            code = target.wait(TICK_SECONDS)
            target.sync()
            ingestor.poll()
            now = time.monotonic()
            if "first_log" not in self.timings and _size(job.log_path) > log_size:
                self.timings["first_log"] = now - t_start
            if now >= next_slow:
                next_slow = now + 1.0
                mirror.sync(target.watched_dirs())
            if code is not None:
                mirror.sync(target.watched_dirs())
                return code, canceled, timed_out
            if not canceled and self._cancel_requested(now >= next_slow - 0.05):
                canceled = True
                self.log("ferry: cancel requested; stopping the job")
                target.cancel(kill_grace_seconds())
            if not canceled and deadline is not None and now >= deadline:
                canceled = timed_out = True
                self.log(f"ferry: the run exceeded max_run_duration_seconds={limit}; stopping it")
                target.cancel(kill_grace_seconds())

    def _finish(
        self,
        target: Target,
        job: JobSpec,
        exit_code: int | None,
        *,
        canceled: bool,
        timed_out: bool,
    ) -> RunStatus:
        t = time.monotonic()
        self._status(RunStatus.FINALIZING)
        target.sync()
        ingestor = getattr(self, "_ingestor", None) or SpoolIngestor(
            self.store, self.run_id, job.spool_dir, self.ws.path
        )
        ingestor.poll()
        arts = artifact_dir(self.ws.path, self.run_id)
        arts.mkdir(parents=True, exist_ok=True)
        if exit_code is not None:
            target.collect_outputs(arts / "outputs")
        records = [
            ArtifactRecord(
                self.run_id,
                f"outputs/{p.relative_to(arts / 'outputs').as_posix()}",
                str(p.relative_to(self.ws.path)),
                p.stat().st_size,
            )
            for p in sorted((arts / "outputs").rglob("*"))
            if p.is_file() or p.is_symlink()
        ]
        if job.log_path.exists():
            records.append(
                ArtifactRecord(
                    self.run_id,
                    LOG_NAME,
                    str(job.log_path.relative_to(self.ws.path)),
                    job.log_path.stat().st_size,
                )
            )
        self.store.add_artifacts(records)
        self.timings["finalize"] = time.monotonic() - t
        if timed_out:
            final, error = (
                RunStatus.FAILED,
                {
                    "error": {
                        "code": "TimeLimitExceeded",
                        "message": "the run exceeded its max_run_duration_seconds "
                        f"({job.definition.get('maxRunDurationSeconds')} s) and was stopped",
                    }
                },
            )
        elif canceled or self._cancel_requested(True):
            final, error = RunStatus.CANCELED, None
        elif exit_code == 0:
            final, error = RunStatus.COMPLETED, None
        else:
            final, error = RunStatus.FAILED, error_from_log(job.log_path, exit_code or 0)
        self._close_children(final)
        self.store.update_run(
            self.run_id, timings=self.timings
        )  # before the status readers wait for
        self._status(final, error=error)
        return final

    def _close_children(self, final: RunStatus) -> None:
        from ferry.tracking import RunQuery

        for child in self.store.list_runs(RunQuery(parent_id=self.run_id)):
            if not child.status.is_terminal():
                try:
                    self.store.set_status(child.id, final)
                except InvalidTransition:
                    pass


STATUS_DETAILS_TAG = "ferry.status_details"


class _PrepareLog:
    """What a target's ``prepare`` writes to: log lines, and (optionally) that the run waits.

    ``log.waiting(reason)`` shows the run ``Queued`` with the reason (the reference's order:
    Preparing, then Queued while waiting for nodes); ``log.resumed()`` goes back to Preparing.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __call__(self, message: str) -> None:
        self.supervisor.log(message)

    def waiting(self, reason: str) -> None:
        sup = self.supervisor
        sup.log(f"ferry: {reason}")
        sup.store.set_tags(sup.run_id, {STATUS_DETAILS_TAG: reason})
        if sup.phase == RunStatus.PREPARING:
            sup._status(RunStatus.QUEUED)

    def resumed(self) -> None:
        sup = self.supervisor
        sup.store.remove_tags(sup.run_id, [STATUS_DETAILS_TAG])
        if sup.phase == RunStatus.QUEUED:
            sup._status(RunStatus.PREPARING)


class _Heartbeat:
    """Beats for the run from a thread, through every phase (a long environment build too)."""

    def __init__(self, store: RunStore, run_id: str, phase: Callable[[], RunStatus]) -> None:
        import threading

        self.store, self.run_id, self.phase = store, run_id, phase
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = heartbeat_interval()
        while not self._stop.wait(interval):
            try:
                self.store.update_run(self.run_id, heartbeat_at=time.time())
                if self.store.get_run(self.run_id).status == RunStatus.NOT_RESPONDING:
                    self.store.set_status(self.run_id, self.phase())  # back to what it was doing
            except FerryError as exc:  # a busy or vanished store must not kill the run
                log.warning("run %s: heartbeat not written: %s", self.run_id, exc)


class _Mirror:
    """Copies changed files of watched folders (./logs) into the run's artifacts, live."""

    def __init__(self, store: RunStore, run_id: str, ws_path: Path) -> None:
        self.store, self.run_id, self.ws_path = store, run_id, ws_path
        self._seen: dict[Path, tuple[int, int]] = {}

    def sync(self, folders: list[Path]) -> None:
        records = []
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.rglob("*"):
                if not path.is_file():
                    continue
                st = path.stat()
                key = (st.st_size, st.st_mtime_ns)
                if self._seen.get(path) == key:
                    continue
                self._seen[path] = key
                name = f"{folder.name}/{path.relative_to(folder).as_posix()}"
                dest = artifact_dir(self.ws_path, self.run_id) / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                records.append(
                    ArtifactRecord(
                        self.run_id, name, str(dest.relative_to(self.ws_path)), st.st_size
                    )
                )
        if records:
            self.store.add_artifacts(records)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ------------------------------------------------------------------------------------------------
# launching


def launch_detached(workspace: Any, run_id: str) -> None:
    """Start the run's supervisor detached from this process (own session, no terminal).

    Fork is used when no other thread could hold a lock across it (fast: ferry is already
    imported); otherwise, or with ``FERRY_SUPERVISOR_SPAWN=1``, a fresh interpreter is spawned.
    """
    import threading

    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    busy = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not getattr(t, "ferry_fork_safe", False)
    ]
    if os.environ.get("FERRY_SUPERVISOR_SPAWN") == "1" or busy:
        _spawn(workspace, run_id, run_dir)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the intermediate child exits at once
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        _detach_stdio(run_dir / "supervisor.log")
        store = workspace.store
        if hasattr(store, "after_fork"):
            store.after_fork()
        code = _main(workspace, run_id)
    except BaseException:
        code = 1
    os._exit(code)


def _spawn(workspace: Any, run_id: str, run_dir: Path) -> None:
    import subprocess

    with open(run_dir / "supervisor.log", "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "ferry.supervisor", str(workspace.path), run_id],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def _detach_stdio(log_path: Path) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(devnull)
    os.close(out)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


def _main(workspace: Any, run_id: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        status = Supervisor(workspace, run_id).run()
    except Exception:
        log.exception("supervisor failed")
        return 1
    return 0 if status == RunStatus.COMPLETED else 1


if __name__ == "__main__":
    from ferry.workspace import Workspace

    sys.exit(_main(Workspace(sys.argv[1]), sys.argv[2]))
