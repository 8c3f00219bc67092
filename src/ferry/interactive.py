"""Interactive runs: ``Experiment.start_logging()`` logs from this very process.

:class:`InteractiveRun` is a :class:`ferry.run.Run` whose metrics, while it runs, go through the
in-job runtime's spool (batched: a training loop may log tens of thousands of values) instead of
one write each; files, tags and names go straight to the history as for any run. A small
background thread here ingests the spool and beats the heartbeat, so a notebook that dies never
leaves its run Running forever. Child runs (``child_run``, ``create_children``) are the runtime's,
as inside a job.

Completing the run releases everything it held: the ingest thread is joined, the spool writer is
closed (its thread stopped, its file closed, and it leaves the runtime's set of live writers), so a
process may log thousands of interactive runs one after another at the same speed. A record
logged after completion is written and ingested at once, holding nothing open afterwards.

Example::

    with experiment.start_logging(snapshot_directory=None) as run:
        run.log("accuracy", 0.9)
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.ingest import SpoolIngestor, artifact_dir
from ferry.liveness import heartbeat_interval
from ferry.run import Run
from ferry.runtime import validation
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.runtime import JobRun, SpoolWriter


class InteractiveLogger:
    """The in-process side of an interactive run: runtime logger + ingest + heartbeat."""

    def __init__(
        self, experiment: Experiment, run_id: str, spool_dir: Path, outputs: Path | None
    ) -> None:
        from ferry.runtime import SpoolWriter, SubmittedRun
        from ferry.runtime import run as runtime_run

        self.ws = experiment.workspace
        self.run_id = run_id
        self.outputs = outputs
        self._writer = SpoolWriter(str(spool_dir))
        self._run = SubmittedRun(
            run_id,
            runtime_run.JobExperiment(experiment.name),
            self._writer,
            owned_by_supervisor=True,
        )
        self._ingestor = SpoolIngestor(self.ws.store, run_id, spool_dir, self.ws.path)
        self._lock = threading.Lock()
        self._state = threading.Lock()  # held while a record is queued, and while finishing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"ferry-{run_id}", daemon=True)
        self._thread.start()

    @property
    def writer(self) -> SpoolWriter:
        """The runtime's spool writer for this run (closed once the run has finished)."""
        return self._writer

    @property
    def thread(self) -> threading.Thread:
        """The ingest and heartbeat thread (joined once the run has finished)."""
        return self._thread

    @property
    def job_run(self) -> JobRun:
        """The runtime's run object: it makes child runs as inside a job."""
        return self._run

    def queue(self, record: dict[str, Any]) -> bool:
        """Queue one spool record (see docs/runtime-protocol.md) while the run is live;
        False (nothing queued) once it has finished."""
        with self._state:
            if self._stop.is_set():
                return False
            self._writer.write(record)
            return True

    def _loop(self) -> None:
        interval = heartbeat_interval()
        next_beat = 0.0
        while not self._stop.wait(0.5):
            self.flush()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + interval
                self.ws.store.update_run(self.run_id, heartbeat_at=time.time())

    def flush(self) -> None:
        with self._lock:
            self._writer.flush()
            self._ingestor.poll()

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Ingest what is left, keep ./outputs, end the run, and release the thread and the file."""
        with self._state:  # no record is queued after this
            if self._stop.is_set():
                return
            self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            self._writer.close()  # flushes, stops its thread, closes its file
            self._ingestor.poll()
            self._run._emit = self._write_late
        self._keep_outputs()
        err = {"error": {"code": "UserError", "message": error}} if error else None
        record = self.ws.store.get_run(self.run_id)
        if not record.status.is_terminal():
            self.ws.store.set_status(self.run_id, status, error=err)

    def _write_late(self, record: dict[str, Any]) -> None:
        # after the run ended: no thread to flush or ingest, so do both now and close again
        with self._lock:
            self._writer.write(record)
            self._writer.close()
            self._ingestor.poll()

    def _keep_outputs(self) -> None:
        if self.outputs is None or not self.outputs.is_dir():
            return
        dest = artifact_dir(self.ws.path, self.run_id) / "outputs"
        records = []
        for path in sorted(self.outputs.rglob("*")):
            if path.is_file():
                rel = path.relative_to(self.outputs).as_posix()
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                records.append(
                    ArtifactRecord(
                        self.run_id,
                        f"outputs/{rel}",
                        str(target.relative_to(self.ws.path)),
                        path.stat().st_size,
                    )
                )
        self.ws.store.add_artifacts(records)


class InteractiveRun(Run):
    """A run logged from this process (``Experiment.start_logging()``); a context manager that
    completes it, or fails it with the exception that left the block.

    Example::

        with experiment.start_logging(snapshot_directory=None) as run:
            run.log("accuracy", 0.9)
            with run.child_run("fold-1") as child:
                child.log("accuracy", 0.91)
    """

    def __init__(self, experiment: Experiment, run_id: str, logger: InteractiveLogger) -> None:
        super().__init__(experiment, run_id)
        self._logger = logger

    @property
    def logger(self) -> InteractiveLogger:
        """The in-process side of the run: spool, ingest thread and heartbeat."""
        return self._logger

    def _log_metric(
        self, name: str, kind: str, value: Any, description: Any, step: int | None = None
    ) -> None:
        record = {
            "k": "metric",
            "run": self.id,
            "ts": time.time(),
            "name": name,
            "type": kind,
            "value": value,
            "step": step,
            "desc": description if type(description) is str else validation.as_text(description),
        }
        if not self._logger.queue(record):  # finished: written at once, like any run's values
            super()._log_metric(name, kind, value, description, step)

    def _flush(self) -> None:
        """Write the batch now (the ingest thread also writes it every half second)."""
        self._logger.flush()

    def child_run(
        self, name: str | None = None, run_id: str | None = None, outputs: Any = None
    ) -> JobRun:
        """Create and start a child run (the runtime's); use it as a context manager."""
        return self._logger.job_run.child_run(name=name, run_id=run_id, outputs=outputs)

    def create_children(
        self,
        count: int | None = None,
        tag_key: str | None = None,
        tag_values: Iterable[str] | None = None,
    ) -> list[JobRun]:
        """Create up to 100 children at once, from ``count`` or ``tag_key`` + ``tag_values``."""
        return self._logger.job_run.create_children(
            count=count, tag_key=tag_key, tag_values=tag_values
        )

    def complete(self, _set_status: bool = True) -> None:
        """End the run Completed: ingest what is left, keep ./outputs, release the thread."""
        self._logger.finish(RunStatus.COMPLETED)
        self._record = None

    def fail(
        self, error_details: Any = None, error_code: Any = None, _set_status: bool = True
    ) -> None:
        """End the run Failed with ``error_details`` as its error message."""
        self._logger.finish(RunStatus.FAILED, str(error_details) if error_details else None)
        self._record = None

    def __enter__(self) -> InteractiveRun:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.complete()
        else:
            self.fail(f"{exc_type.__name__}: {exc}")


def start_interactive_run(
    experiment: Experiment,
    outputs: str | bool | None,
    snapshot_directory: Path | None,
    display_name: str | None,
) -> InteractiveRun:
    """Create a Running run in this process and return its handle (a context manager)."""
    from ferry.submit import new_run_id, snapshot_source

    ws = experiment.workspace
    run_id = new_run_id(experiment.name)
    properties: dict[str, str] = {}
    snapshot = None
    timings: dict[str, float] = {}
    if snapshot_directory is not None:
        snapshot, properties, timings["snapshot"] = snapshot_source(
            ws, snapshot_directory.resolve()
        )
        properties["ContentSnapshotId"] = snapshot["id"]
    now = time.time()
    ws.store.create_run(
        RunRecord(
            id=run_id,
            experiment=experiment.name,
            status=RunStatus.RUNNING,
            run_type="ferry.interactive",
            display_name=display_name,
            created_at=now,
            start_time=now,
            heartbeat_at=now,
            definition={"orchestrator": "External", "cwd": os.getcwd()},
            snapshot=snapshot,
            timings=timings,
            properties=properties,
            supervisor_pid=os.getpid(),
            host=socket.gethostname(),
            run_dir=str(ws.runs_dir / run_id),
        )
    )
    out_dir = None if outputs is False else Path(str(outputs or "outputs"))
    logger = InteractiveLogger(experiment, run_id, ws.runs_dir / run_id / "spool", out_dir)
    return InteractiveRun(experiment, run_id, logger)
