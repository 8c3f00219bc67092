"""Interactive runs: ``Experiment.start_logging()`` logs from this very process.

The run uses the same in-job runtime as a submitted script (records to a spool, batched) and a
small background thread here ingests the spool and beats the heartbeat, so a notebook that dies
never leaves its run Running forever.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.ingest import SpoolIngestor, artifact_dir
from ferry.liveness import heartbeat_interval
from ferry.status import RunStatus
from ferry.tracking import ArtifactRecord, RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.run import Run
    from ferry.runtime import SpoolWriter


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

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


def start_interactive_run(
    experiment: Experiment,
    outputs: str | None,
    snapshot_directory: Path | None,
    display_name: str | None,
) -> Run:
    """Create a Running run in this process and return its handle (a context manager)."""
    from ferry.run import Run
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
    out_dir = None if outputs is False else Path(outputs or "outputs")  # type: ignore[comparison-overlap]
    run = Run(experiment, run_id)
    run._live = InteractiveLogger(experiment, run_id, ws.runs_dir / run_id / "spool", out_dir)
    return run
