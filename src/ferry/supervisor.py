"""The supervisor: owns one run's life on the machine that drives it.

Prepare (snapshot + environment) → launch through the target → follow (ingest the spool, mirror
./logs, heartbeat, honour cancel and the time limit) → finalize (outputs become artifacts) → the
final status. It runs detached from the submitting process (:func:`launch_detached`), so a driver
that exits at once, ``--no-wait`` and a closed terminal do not end the run.

A supervisor never starts from the submitting process's state: it is forked from the warm
zygote (a process that never opens a database and has no other threads) with every inherited
descriptor closed, or spawned as a fresh interpreter. So it holds none of the submitter's SQLite
connections, locks, sockets or open files (a driver holding an ``flock`` keeps it to itself).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ferry.errors import FerryError, InvalidTransition, StoreError
from ferry.ingest import SpoolIngestor, artifact_dir, output_records, safe_destination
from ferry.jobdef import job_spec
from ferry.liveness import heartbeat_interval, sweep
from ferry.spec import JobSpec, WorkspaceServices
from ferry.status import RunStatus
from ferry.targets.base import LOG_NAME, Prepared, Target
from ferry.tracking import ArtifactRecord, RunStore

log = logging.getLogger("ferry.supervisor")

DONE_MARKER = "done"
CANCEL_MARKER = "cancel"
TICK_SECONDS = 0.05


#: the umask the job gets: the submitter's (the supervisor's own files are private, 077)
_job_umask: int | None = None


def job_umask() -> int:
    """The submitter's umask, for the job (the supervisor itself works under 077)."""
    if _job_umask is not None:
        return _job_umask
    current = os.umask(0o077)
    os.umask(current)
    return current


def kill_grace_seconds() -> float:
    try:
        return float(os.environ.get("FERRY_KILL_GRACE_SECONDS", "10"))
    except ValueError:
        return 10.0


def error_from_log(log_path: Path, exit_code: int) -> dict[str, Any]:
    """The run's error: the traceback's exception line as message, and the log's tail."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(max(0, log_path.stat().st_size - 65536))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    message = exception_line(lines)
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


def exception_line(lines: list[str]) -> str:
    """The exception line of the last traceback in ``lines`` (``ValueError: bad alpha``): the
    first line after the frames, not the last line printed (a message may span several lines,
    the last one a URL; other output may follow)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")]
    if not starts:
        return ""
    i = starts[-1] + 1
    while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
        i += 1
    return lines[i].strip()[:1000] if i < len(lines) else ""


#: what the reference's offline run prints for each value it does not record
_OFFLINE_LOGGING = re.compile(rb"^Attempted to log \S+ metric .*:$", re.MULTILINE)


class Supervisor:
    """Drives one run through a target from Queued to a terminal status."""

    def __init__(self, workspace: WorkspaceServices, run_id: str) -> None:
        self.ws = workspace
        self.store: RunStore = workspace.store
        self.run_id = run_id
        self.run_dir = workspace.runs_dir / run_id
        self.timings: dict[str, float] = {}
        self._cancel_seen = False
        #: set when someone else ended the run (``run.fail()`` from the driver, a reaper)
        self._ended_by: RunStatus | None = None
        self._target: Target | None = None
        self._ingestor: SpoolIngestor | None = None
        #: set once the job has ended and its log is complete: from then on ferry's lines are
        #: written here (a watchdog on its way out would drop them)
        self._job_over = False
        #: the status this supervisor last set (restored after a NotResponding spell)
        self.phase = RunStatus.QUEUED

    # helpers ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """A line of ferry's own in the run's log (preparation, environment builds, notes)."""
        if not self._job_over and self._target is not None and self._target.note(message):
            return  # the job's watchdog writes the log while the job runs
        path = self.run_dir / LOG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace") as fh:
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
            elif current.is_terminal():
                self._ended_by = current
            log.info("run %s: %s -> %s refused", self.run_id, current, status)
            return False

    def _stop_requested(self, check_store: bool) -> bool:
        """A cancel, or the run ended by someone else (its status is then theirs)."""
        if self._cancel_seen or self._ended_by is not None:
            return True
        if (self.run_dir / CANCEL_MARKER).exists():
            self._cancel_seen = True
        elif check_store:
            status = self.store.get_run(self.run_id).status
            if status == RunStatus.CANCEL_REQUESTED:
                self._cancel_seen = True
            elif status.is_terminal():
                self._ended_by = status
        return self._cancel_seen or self._ended_by is not None

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
        beating = Heartbeat(self.store, self.run_id, lambda: self.phase)
        beating.start()
        try:
            from ferry.targets.registry import resolve_target

            job = job_spec(
                run_id=record.id,
                experiment=record.experiment,
                target=record.target,
                run_dir=self.run_dir,
                definition=record.definition,
                parent_run_id=record.parent_id,
                snapshot_id=(record.snapshot or {}).get("id"),
            )
            self._drive(resolve_target(self.ws, record.target), job)
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
            target, self._target = self._target, None
            if target is not None:
                try:
                    target.close()
                except Exception:
                    log.exception("closing target")
            self.store.update_run(self.run_id, timings=self.timings)
            (self.run_dir / DONE_MARKER).touch()
            beating.sweep_once()  # after the done marker: nobody waits for it
        return self.store.get_run(self.run_id).status

    def _fail(self, error: dict[str, Any]) -> None:
        current = self.store.get_run(self.run_id).status
        if not current.is_terminal():
            final = (
                RunStatus.CANCELED if current == RunStatus.CANCEL_REQUESTED else RunStatus.FAILED
            )
            self._status(final, error=error)

    def _drive(self, target: Target, job: JobSpec) -> RunStatus:
        self._target = target
        t = time.monotonic()
        if self._stop_requested(True) or not self._status(RunStatus.PREPARING):
            return self._finish(target, job, None, canceled=True, timed_out=False)
        for note in job.notes:
            self.log(f"ferry: {note}")
        prepared = target.prepare(job, _PrepareContext(self))
        self.timings["prepare"] = time.monotonic() - t
        self._keep_environment(prepared)
        if self._stop_requested(True) or not self._status(RunStatus.STARTING):
            return self._finish(target, job, None, canceled=True, timed_out=False)
        log_size = job.log_path.stat().st_size if job.log_path.exists() else 0
        t_start = time.monotonic()
        started = target.start(job)
        self.store.update_run(self.run_id, job_pgid=started.job_pgid, host=started.host)
        self._status(RunStatus.RUNNING)
        exit_code, canceled, timed_out = self._follow(target, job, log_size, t_start)
        self.timings["run"] = time.monotonic() - t_start
        return self._finish(target, job, exit_code, canceled=canceled, timed_out=timed_out)

    def _keep_environment(self, prepared: Prepared) -> None:
        """The environment's hash as a property, its resolved lock as an artifact."""
        if prepared.env_hash:
            self.store.add_properties(self.run_id, {"ferry.environment.hash": prepared.env_hash})
        if prepared.env_lock:
            dest = artifact_dir(self.ws.path, self.run_id) / "environment" / "lock.txt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(prepared.env_lock, encoding="utf-8")
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

    def _ingestor_for(self, job: JobSpec) -> SpoolIngestor:
        if self._ingestor is None:
            self._ingestor = SpoolIngestor(
                self.store, self.run_id, job.spool_dir, self.ws.path, note=self.log
            )
        return self._ingestor

    def _follow(
        self, target: Target, job: JobSpec, log_size: int, t_start: float
    ) -> tuple[int, bool, bool]:
        ingestor = self._ingestor_for(job)
        limit = job.max_duration
        deadline = t_start + limit if limit else None
        next_slow = time.monotonic()
        canceled = timed_out = False
        mirror = _Mirror(self.store, self.run_id, self.ws.path, self.log)
        while True:
            code = target.wait(TICK_SECONDS)
            target.sync()
            try:
                ingestor.poll()
            except StoreError as exc:  # nothing of that batch was stored: read it again later
                log.warning("run %s: spool not ingested yet: %s", self.run_id, exc)
            now = time.monotonic()
            if "first_log" not in self.timings and _size(job.log_path) > log_size:
                self.timings["first_log"] = now - t_start
            slow = now >= next_slow
            if slow:
                next_slow = now + 1.0
                mirror.sync(target.watched_dirs())
            if code is not None:
                mirror.sync(target.watched_dirs())
                return code, canceled, timed_out
            if not canceled and self._stop_requested(slow):
                canceled = True
                if self._ended_by is not None:
                    self.log(
                        f"ferry: the run was marked {self._ended_by.value} from outside; "
                        "stopping the job"
                    )
                else:
                    self.log("ferry: cancel requested; stopping the job")
                target.cancel(kill_grace_seconds())
            if not canceled and deadline is not None and now >= deadline:
                canceled = timed_out = True
                self.log(f"ferry: the run exceeded max_run_duration_seconds={limit:g}; stopping it")
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
        if self._ended_by is None:
            self._status(RunStatus.FINALIZING)
        target.sync()
        self._job_over = True
        ingestor = self._ingestor_for(job)
        if self._ended_by is not None:
            ingestor.resync()  # whoever ended the run may have read the spool meanwhile
        ingestor.drain()
        arts = artifact_dir(self.ws.path, self.run_id)
        arts.mkdir(parents=True, exist_ok=True)
        if exit_code is not None and job.collect_outputs:
            target.collect_outputs(arts / "outputs")
        elif exit_code is not None:
            self.log("ferry: history.output_collection is False: ./outputs is not kept")
        records = self._output_records(arts / "outputs")
        if exit_code is not None:
            self._note_offline_logging(job.log_path, ingestor)
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
        if self._ended_by is not None:
            self._close_children(self._ended_by)
            self.store.update_run(self.run_id, timings=self.timings)
            return self._ended_by
        if timed_out:
            final, error = (
                RunStatus.FAILED,
                {
                    "error": {
                        "code": "TimeLimitExceeded",
                        "message": "the run exceeded its max_run_duration_seconds "
                        f"({job.max_duration:g} s) and was stopped",
                    }
                },
            )
        elif canceled or self._stop_requested(True):
            final, error = RunStatus.CANCELED, None
        elif exit_code == 0:
            final, error = RunStatus.COMPLETED, None
        else:
            final, error = RunStatus.FAILED, error_from_log(job.log_path, exit_code or 0)
        self._close_children(final)
        self.store.update_run(
            self.run_id, timings=self.timings
        )  # before the status readers wait for
        if self._ended_by is None:
            self._status(final, error=error)
        return self.store.get_run(self.run_id).status

    def _output_records(self, outputs: Path) -> list[ArtifactRecord]:
        return output_records(outputs, self.ws.path, self.run_id, self.log)

    def _note_offline_logging(self, log_path: Path, ingestor: SpoolIngestor) -> None:
        """Say so when the script logged through an SDK's offline run (printed, not recorded)."""
        if ingestor.metric_values:
            return
        try:
            with open(log_path, "rb") as fh:
                printed = len(_OFFLINE_LOGGING.findall(fh.read(64 << 20)))
        except OSError:
            return
        if printed:
            self.log(
                f"ferry: the script printed {printed} value(s) with 'Attempted to log', which "
                "is what an offline run of the reference SDK does: those values were printed, "
                "not recorded. Get the run with `Run.get_context()` from `ferry` or from "
                "`azureml.core` inside the job (ferry's runtime is put first on PYTHONPATH; "
                "check that the script does not change sys.path or import another SDK's Run)."
            )

    def _close_children(self, final: RunStatus) -> None:
        from ferry.tracking import RunQuery

        for child in self.store.list_runs(RunQuery(parent_id=self.run_id)):
            if not child.status.is_terminal():
                try:
                    self.store.set_status(child.id, final)
                except InvalidTransition:
                    pass


STATUS_DETAILS_TAG = "ferry.status_details"


class _PrepareContext:
    """What a target's ``prepare`` reports to (:class:`~ferry.spec.PrepareContext`).

    ``waiting(reason)`` shows the run ``Queued`` with the reason (the reference's order:
    Preparing, then Queued while waiting for nodes); ``resumed()`` goes back to Preparing;
    ``cancelled()`` is True once the run is to stop.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._checked = 0.0

    def log(self, line: str) -> None:
        self.supervisor.log(line)

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

    def cancelled(self) -> bool:
        now = time.monotonic()
        check_store = now - self._checked >= 1.0  # the marker at once, the store each second
        if check_store:
            self._checked = now
        return self.supervisor._stop_requested(check_store)


class Heartbeat:
    """Beats for the run from a thread, through every phase (a long environment build too)."""

    def __init__(self, store: RunStore, run_id: str, phase: Callable[[], RunStatus]) -> None:
        import threading

        self.store, self.run_id, self.phase = store, run_id, phase
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)
        self._swept = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sweep_once(self) -> None:
        """Judge every run that is not over (runs whose supervisors died are found even if
        nobody lists them); once per supervisor: at its first beat, or at the end of a run
        shorter than that — never while a run starts, where it would only slow the start."""
        if self._swept:
            return
        self._swept = True
        try:
            sweep(self.store)
        except FerryError as exc:
            log.warning("liveness sweep: %s", exc)

    def _beat(self) -> None:
        interval = heartbeat_interval()
        while not self._stop.wait(interval):
            self.sweep_once()
            try:
                self.store.update_run(self.run_id, heartbeat_at=time.time())
                if self.store.get_run(self.run_id).status == RunStatus.NOT_RESPONDING:
                    self.store.set_status(  # back to what it was doing
                        self.run_id, self.phase(), expected=RunStatus.NOT_RESPONDING
                    )
            except FerryError as exc:  # a busy or vanished store must not kill the run
                log.warning("run %s: heartbeat not written: %s", self.run_id, exc)


class _Mirror:
    """Copies what watched folders (./logs) gained into the run's artifacts, live.

    Only the bytes appended since the last copy are copied (a growing log costs its growth, not
    its size, each second); a file that shrank or was replaced is copied whole. Links are never
    followed: a link in ./logs is left out, with a note.
    """

    def __init__(
        self, store: RunStore, run_id: str, ws_path: Path, note: Callable[[str], None]
    ) -> None:
        self.store, self.run_id, self.ws_path, self.note = store, run_id, ws_path, note
        #: path -> (inode, bytes copied, mtime_ns)
        self._seen: dict[Path, tuple[int, int, int]] = {}
        self._links: set[Path] = set()

    def sync(self, folders: Mapping[str, Path]) -> None:
        """Mirror each folder under its artifact prefix (``logs`` → ``logs/…``)."""
        records = []
        for prefix, folder in folders.items():
            if folder.is_symlink() or not folder.is_dir():
                continue
            for parent, dirs, files in os.walk(folder):  # never follows links
                for name in files + [d for d in dirs if (Path(parent) / d).is_symlink()]:
                    record = self._copy(prefix, folder, Path(parent) / name)
                    if record is not None:
                        records.append(record)
        if records:
            self.store.add_artifacts(records)

    def _copy(self, prefix: str, folder: Path, path: Path) -> ArtifactRecord | None:
        rel = f"{prefix}/{path.relative_to(folder).as_posix()}"
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            if path not in self._links:
                self._links.add(path)
                self.note(f"ferry: {rel} is a symbolic link; links in ./logs are not mirrored")
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        seen = self._seen.get(path)
        if seen == (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        dest = safe_destination(artifact_dir(self.ws_path, self.run_id), rel)
        if dest is None:
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        appended = seen is not None and seen[0] == st.st_ino and st.st_size > seen[1]
        try:
            copied = (
                _append_from(path, dest, seen[1]) if appended and seen else _copy_whole(path, dest)
            )
        except OSError:
            return None
        self._seen[path] = (st.st_ino, copied, st.st_mtime_ns)
        return ArtifactRecord(self.run_id, rel, str(dest.relative_to(self.ws_path)), copied)


def _append_from(src: Path, dest: Path, offset: int) -> int:
    """Append ``src``'s bytes from ``offset`` to ``dest``; returns the bytes ``dest`` now has."""
    with open(src, "rb") as fin, open(dest, "ab") as fout:
        fin.seek(offset)
        shutil.copyfileobj(fin, fout, 1 << 20)
        return fin.tell()


def _copy_whole(src: Path, dest: Path) -> int:
    temp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    with open(src, "rb") as fin, open(temp, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        size = fout.tell()
    os.replace(temp, dest)
    return size


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ------------------------------------------------------------------------------------------------
# launching


def launch_detached(workspace: WorkspaceServices, run_id: str) -> None:
    """Start the run's supervisor from a clean process, detached from this one.

    The warm zygote forks it (fast: ferry is already imported there, and the zygote never holds
    a database or a thread); without a zygote — or with ``FERRY_SUPERVISOR_SPAWN=1`` — a fresh
    interpreter is spawned. Either way it gets this process's environment and umask, its own
    session, no terminal, and none of this process's open descriptors.
    """
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = run_dir / "supervisor.log"
    if os.environ.get("FERRY_SUPERVISOR_SPAWN") != "1":
        from ferry.cli import fast

        via_zygote = getattr(fast, "start_supervisor_via_zygote", None)
        if via_zygote is not None and via_zygote(
            str(workspace.path), run_id, dict(os.environ), str(log_path)
        ):
            return
    _spawn(workspace, run_id, log_path)


#: spawned supervisors not yet reaped (a long-lived driver must not collect zombies)
_spawned: list[Any] = []


def _spawn(workspace: WorkspaceServices, run_id: str, log_path: Path) -> None:
    import subprocess

    _spawned[:] = [p for p in _spawned if p.poll() is None]
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _spawned.append(
            subprocess.Popen(
                [sys.executable, "-m", "ferry.supervisor", str(workspace.path), run_id],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                cwd=str(workspace.path),
            )
        )
    finally:
        os.close(fd)


def supervise_detached_child(workspace_path: str, run_id: str) -> int:
    """Run a run's supervisor in this (fresh, detached) process; returns the exit code."""
    from ferry.workspace import Workspace

    return supervise(Workspace(workspace_path), run_id)


def supervise(workspace: WorkspaceServices, run_id: str) -> int:
    """Supervise a run in this process to its end (one supervisor per run: a second leaves at
    once); returns the exit code. For a fresh process: it sets the umask and logging."""
    global _job_umask
    _job_umask = os.umask(0o077)  # the run's files are the user's alone; the job keeps its own
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    lock = _one_supervisor(workspace.runs_dir / run_id)
    if lock is None:
        log.info("run %s already has a supervisor; this one leaves", run_id)
        return 0
    try:
        status = Supervisor(workspace, run_id).run()
    except Exception:
        log.exception("supervisor failed")
        return 1
    finally:
        os.close(lock)
    return 0 if status == RunStatus.COMPLETED else 1


def _one_supervisor(run_dir: Path) -> int | None:
    """A lock held for the supervisor's life: a second supervisor of the same run (a zygote
    that answered late, so the submitter spawned one too) finds it taken and leaves."""
    import fcntl

    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(run_dir / "supervisor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


if __name__ == "__main__":
    sys.exit(supervise_detached_child(sys.argv[1], sys.argv[2]))
