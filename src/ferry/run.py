"""Run: the handle on one run in the history, and ``Run.get_context()`` for training scripts.

Example::

    run = experiment.submit(src)
    run.wait_for_completion(show_output=True)
    run.get_metrics()            # {"mse": [..], "alpha": 0.4}
"""

from __future__ import annotations

import builtins
import codecs
import getpass
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ferry import liveness
from ferry.errors import ConfigError, RunFailed
from ferry.metrics import shape
from ferry.status import RunStatus, can_transition, parse_status
from ferry.supervisor import CANCEL_MARKER, DONE_MARKER
from ferry.targets.base import LOG_NAME
from ferry.tracking import RunQuery, RunRecord

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.workspace import Workspace

_log = logging.getLogger("ferry.download")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class Run:
    """One run of an experiment: status, details, logs, metrics, files, tags and properties."""

    def __init__(
        self, experiment: Experiment, run_id: str, _record: RunRecord | None = None
    ) -> None:
        self.experiment = experiment
        self.id = run_id
        self._record = _record
        self._live: Any = None  # the in-process logger of an interactive run

    # construction -------------------------------------------------------------------------
    @classmethod
    def get(cls, workspace: Workspace, run_id: str) -> Run:
        from ferry.experiment import Experiment

        record = workspace.store.get_run(run_id)
        return cls(
            Experiment(workspace, record.experiment, _skip_name_validation=True), run_id, record
        )

    @classmethod
    def list(
        cls,
        experiment: Experiment,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        status: str | None = None,
        include_children: bool = False,
    ) -> Iterator[Run]:
        return experiment.get_runs(
            type=type,
            tags=tags,
            properties=properties,
            status=status,
            include_children=include_children,
        )

    @staticmethod
    def get_context(
        allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any
    ) -> Any:
        """The current run inside a training script (an offline run outside ferry)."""
        try:
            import ferry_runtime as runtime  # type: ignore[import-not-found]  # a job's copy
        except ImportError:
            from ferry import runtime
        return runtime.get_context(
            allow_offline=allow_offline, used_for_context_manager=used_for_context_manager
        )

    # state --------------------------------------------------------------------------------
    @property
    def workspace(self) -> Workspace:
        return self.experiment.workspace

    @property
    def _store(self) -> Any:
        return self.workspace.store

    @property
    def run_dir(self) -> Path:
        return self.workspace.runs_dir / self.id

    def _refresh(self) -> RunRecord:
        if self._record is None or not self._record.status.is_terminal():
            self._record = liveness.check(self._store, self._store.get_run(self.id))
        return self._record

    @property
    def record(self) -> RunRecord:
        return self._refresh()

    def get_status(self) -> str:
        return self._refresh().status.value

    @property
    def status(self) -> str:
        return self.get_status()

    def get_detailed_status(self) -> dict[str, str]:
        """``{"status": …, "details": …}``: why a Queued run waits (e.g. for cluster resources)."""
        rec = self._refresh()
        return {
            "status": rec.status.value,
            "details": str(rec.tags.get("ferry.status_details") or ""),
        }

    @property
    def display_name(self) -> str:
        return self._refresh().display_name or self.id

    @property
    def type(self) -> str:
        return self._refresh().run_type

    @property
    def parent(self) -> Run | None:
        parent_id = self._refresh().parent_id
        return Run(self.experiment, parent_id) if parent_id else None

    @property
    def tags(self) -> dict[str, str | None]:
        return dict(self._refresh().tags)

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._refresh().properties)

    def get_tags(self) -> dict[str, str | None]:
        self._record = None
        return self.tags

    def get_properties(self) -> dict[str, str]:
        self._record = None
        return self.properties

    def get_details(self) -> dict[str, Any]:
        """The reference's keys: runId, target, status, startTimeUtc, endTimeUtc, properties, …"""
        rec = self._refresh()
        details: dict[str, Any] = {
            "runId": rec.id,
            "target": rec.target,
            "status": rec.status.value,
            "startTimeUtc": _iso(rec.start_time),
            "properties": dict(rec.properties),
            "inputDatasets": [],
            "outputDatasets": [],
            "runDefinition": dict(rec.definition),
            "logFiles": self._log_files(),
            "submittedBy": str(rec.definition.get("submittedBy") or _current_user()),
            "tags": dict(rec.tags),
            "timings": dict(rec.timings),
        }
        if rec.end_time is not None:
            details["endTimeUtc"] = _iso(rec.end_time)
        if rec.snapshot:
            details["snapshot"] = {k: v for k, v in rec.snapshot.items() if k != "git"}
        if rec.error:
            details["error"] = dict(rec.error)
        if rec.parent_id:
            details["parentRunId"] = rec.parent_id
        return details

    def _log_files(self) -> dict[str, str]:
        """The main log, then every other rank's log of a distributed run."""
        main = self.run_dir / LOG_NAME
        logs = {LOG_NAME: str(main)} if main.exists() else {}
        for rank_log in sorted(main.parent.glob("std_log_rank_*.txt")):
            logs[f"user_logs/{rank_log.name}"] = str(rank_log)
        return logs

    # waiting ------------------------------------------------------------------------------
    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        timeout_seconds: float | None = None,
        out: TextIO | None = None,
    ) -> dict[str, Any]:
        """Wait for the run to end, following its log live when ``show_output``."""
        stream = out or sys.stdout
        if show_output:
            stream.write(f"RunId: {self.id}\nWeb View: {self.get_portal_url()}\n\n")
            stream.write(f"Streaming {LOG_NAME}\n{'=' * (len(LOG_NAME) + 10)}\n\n")
            stream.flush()
        for chunk in self.follow_log(timeout_seconds=timeout_seconds):
            if show_output:
                stream.write(chunk)
                stream.flush()
        details = self.get_details()
        if show_output:
            stream.write(
                f"\nExecution Summary\n=================\nRunId: {self.id}\nWeb View: {self.get_portal_url()}\n"
            )
            if details.get("error"):
                import json

                stream.write(f"\nError:\n{json.dumps(details['error'], indent=2)}\n")
            stream.flush()
        if raise_on_error and details["status"] == RunStatus.FAILED.value:
            message = (
                (details.get("error") or {})
                .get("error", {})
                .get(
                    "message",
                    "Detailed error not set on the Run. Please check the logs for details.",
                )
            )
            raise RunFailed(f"run {self.id} failed: {message}", details)
        return details

    def follow_log(self, timeout_seconds: float | None = None, poll: float = 0.02) -> Iterator[str]:
        """Yield the run's log as it grows until the run has ended (sub-second latency)."""
        path = self.run_dir / LOG_NAME
        done = self.run_dir / DONE_MARKER
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        offset = 0
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        next_check = time.monotonic() + 1.0
        while True:
            finished = done.exists()
            offset, text = _read_from(path, offset, decoder)
            if text:
                yield text
            if finished:
                break
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                self._record = None
                if self._refresh().status.is_terminal():
                    offset, text = _read_from(path, offset, decoder)
                    if text:
                        yield text
                    break
            if deadline is not None and now >= deadline:
                raise TimeoutError(
                    f"run {self.id} is still {self.get_status()} after {timeout_seconds} s"
                )
            time.sleep(poll)
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail
        self._record = None

    def get_portal_url(self) -> str:
        return f"file://{self.run_dir}"

    # control ------------------------------------------------------------------------------
    def cancel(self) -> bool:
        """Ask the run to stop; returns False when it had already ended."""
        rec = self._store.get_run(self.id)
        if rec.status.is_terminal():
            return False
        if rec.status in (RunStatus.NOT_STARTED,) and not rec.supervisor_pid:
            self._store.set_status(self.id, RunStatus.CANCELED)
            return True
        self._store.set_status(self.id, RunStatus.CANCEL_REQUESTED)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / CANCEL_MARKER).touch()
        self._record = None
        return True

    # metrics, files, tags -------------------------------------------------------------------
    def _flush_live(self) -> None:
        if self._live is not None:
            self._live.flush()

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, **_: Any
    ) -> dict[str, Any]:
        self._flush_live()
        if not recursive:
            return shape(self._store.get_series([self.id], name))
        ids = [self.id, *(r.id for r in self.get_children(recursive=True))]
        series = self._store.get_series(ids, name)
        return {run_id: shape(s for s in series if s.run_id == run_id) for run_id in ids}

    def get_file_names(self) -> builtins.list[str]:
        self._flush_live()
        return [a.name for a in self._store.list_artifacts(self.id)]

    def download_file(
        self, name: str, output_file_path: str | os.PathLike[str] | None = None, **_: Any
    ) -> str:
        """Copy one kept file to ``output_file_path`` (default: its base name here). A link the
        job made, or a stored path outside the run's folders, is refused, never followed."""
        from ferry.download import Skipped, checked_name, copy_to_file

        artifacts = {a.name: a for a in self._store.list_artifacts(self.id)}
        if name not in artifacts:
            known = ", ".join(sorted(artifacts)) or "none"
            raise ConfigError(f"run {self.id} has no file {name!r}; its files: {known}")
        try:
            clean = checked_name(name)
            dest = Path(output_file_path) if output_file_path else Path(clean.rsplit("/", 1)[-1])
            if dest.is_dir():
                dest = dest / clean.rsplit("/", 1)[-1]
            copy_to_file(self.workspace.path, self.id, artifacts[name], dest)
        except Skipped as why:
            raise ConfigError(f"run {self.id}: file {name!r} not downloaded: {why}") from None
        return str(dest)

    def download_files(
        self,
        prefix: str | None = None,
        output_directory: str | os.PathLike[str] | None = None,
        output_paths: builtins.list[str] | None = None,
        batch_size: int = 100,
        append_prefix: bool = True,
        *,
        on_skip: Callable[[str], None] | None = None,
        **_: Any,
    ) -> builtins.list[str]:
        """Copy the run's kept files (those whose names start with ``prefix``) below
        ``output_directory`` (default: here), or to ``output_paths`` — one path per file, in
        name order. Returns the paths written; its ``skipped`` attribute lists the files left
        out (links made by the job, names or stored paths outside the run), each also reported
        to ``on_skip`` (default: a warning on the ``ferry.download`` logger)."""
        from ferry.download import download_artifacts, download_to_paths

        chosen = [
            a
            for a in self._store.list_artifacts(self.id)
            if not prefix or a.name.startswith(prefix)
        ]
        if output_paths is not None:
            if isinstance(output_paths, str | os.PathLike):
                raise ConfigError("output_paths must be a list of paths, one per file")
            report = download_to_paths(
                self.workspace.path, self.id, chosen, [os.fspath(p) for p in output_paths]
            )
        else:
            rel_names: builtins.list[str | None] | None = None
            if prefix and not append_prefix:
                rel_names = [
                    a.name[len(prefix) :].lstrip("/") or a.name.rsplit("/", 1)[-1] for a in chosen
                ]
            report = download_artifacts(
                self.workspace.path, self.id, chosen, Path(output_directory or "."), rel_names
            )
        for message in report.skipped:
            if on_skip is not None:
                on_skip(f"run {self.id}: {message}")
            else:
                _log.warning("run %s: %s", self.id, message)
        return report

    def tag(self, key: str, value: Any = None) -> None:
        self._store.set_tags(self.id, {key: None if value is None else str(value)})
        self._record = None

    def set_tags(self, tags: Mapping[str, Any] | str) -> None:
        tags = {tags: None} if isinstance(tags, str) else tags
        self._store.set_tags(
            self.id, {str(k): None if v is None else str(v) for k, v in tags.items()}
        )
        self._record = None

    def remove_tags(self, tags: Iterable[str]) -> None:
        self._store.remove_tags(self.id, [tags] if isinstance(tags, str) else list(tags))
        self._record = None

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        self._store.add_properties(self.id, {str(k): str(v) for k, v in properties.items()})
        self._record = None

    def get_children(
        self,
        recursive: bool = False,
        tags: Any = None,
        properties: Any = None,
        type: str | None = None,
        status: str | None = None,
        _rehydrate_runs: bool = True,
    ) -> Iterator[Run]:
        from ferry.experiment import _filter

        query = RunQuery(
            parent_id=self.id,
            tags=_filter(tags),
            properties=_filter(properties),
            statuses=[parse_status(status)] if status else None,
        )
        for record in reversed(self._store.list_runs(query)):
            child = Run(self.experiment, record.id, _record=record)
            if type is None or record.run_type == type:
                yield child
            if recursive:
                yield from child.get_children(
                    recursive=True, tags=tags, properties=properties, type=type, status=status
                )

    # snapshots ----------------------------------------------------------------------------
    def get_snapshot_id(self) -> str | None:
        snap = self._refresh().snapshot
        return str(snap["id"]) if snap else None

    def _manifest(self) -> Any:
        from ferry.snapshot import load_manifest

        snapshot_id = self.get_snapshot_id()
        if snapshot_id is None:
            raise ConfigError(
                f"run {self.id} has no snapshot (it ran with history.snapshot_project=False)"
            )
        return load_manifest(self.workspace.blobs, snapshot_id)

    def restore_snapshot(
        self, snapshot_id: str | None = None, path: str | os.PathLike[str] | None = None
    ) -> str:
        """Write the run's exact source files into ``path`` (a new or empty folder; a path ending
        in ``.zip`` gives an archive). Returns the absolute path written."""
        from ferry.snapshot import load_manifest, restore, restore_zip

        manifest = (
            load_manifest(self.workspace.blobs, snapshot_id) if snapshot_id else self._manifest()
        )
        dest = Path(path) if path is not None else Path.cwd() / f"{self.id}_snapshot"
        if dest.suffix == ".zip":
            return str(restore_zip(manifest, self.workspace.blobs, dest).resolve())
        return str(restore(manifest, self.workspace.blobs, dest).resolve())

    def diff(self, other: Run) -> tuple[Any, str]:
        """Files added, removed and changed from this run's snapshot to ``other``'s, and a
        unified diff of the text files."""
        from ferry.snapshot import diff, unified_diff

        old, new = self._manifest(), other._manifest()
        return diff(old, new), unified_diff(old, new, self.workspace.blobs)

    def rerun(self, compute_target: Any = None, experiment: Any = None) -> Run:
        """Submit the stored snapshot again with the same script, arguments and environment,
        as a new run linked to this one (property ``ferry.rerun_of``)."""
        from ferry.submit import rerun

        return rerun(self, compute_target=compute_target, experiment=experiment)

    def __repr__(self) -> str:
        return f"Run(experiment={self.experiment.name!r}, id={self.id!r})"

    # interactive runs (Experiment.start_logging) delegate logging to the in-process logger --------
    def __getattr__(self, name: str) -> Any:
        if name.startswith(
            ("log", "upload_", "child_run", "create_children")
        ) and self.__dict__.get("_live"):
            return getattr(self.__dict__["_live"], name)
        if name.startswith(("log", "upload_")):
            raise AttributeError(
                f"{name}() is for the running script: call Run.get_context().{name}(...) inside it"
            )
        raise AttributeError(name)

    def complete(self, _set_status: bool = True) -> None:
        """Mark the run Completed (as the reference does from the driver); an interactive run
        is finished in this process."""
        if self._live is not None:
            self._live.finish(RunStatus.COMPLETED)
        elif _set_status:
            self._end(RunStatus.COMPLETED, None)

    def fail(
        self, error_details: Any = None, error_code: Any = None, _set_status: bool = True
    ) -> None:
        """Mark the run Failed with the reference's error shape. The run stays Failed whatever
        its job does next: the supervisor stops the job and keeps its outputs."""
        if self._live is not None:
            self._live.finish(RunStatus.FAILED, str(error_details) if error_details else None)
        elif _set_status:
            message = (
                str(error_details)
                if error_details is not None
                else "the run was failed by run.fail()"
            )
            code = str(error_code) if error_code else "UserError"
            self._end(RunStatus.FAILED, {"error": {"code": code, "message": message}})

    def _end(self, status: RunStatus, error: dict[str, Any] | None) -> None:
        """Compare-and-set from the live status the run is in to ``status``: a run that ended
        meanwhile is never changed (the store refuses, and this says so)."""
        from ferry.errors import InvalidTransition

        verb = "complete" if status == RunStatus.COMPLETED else "fail"
        for _ in range(5):  # the run may move on (Running → Finalizing) between read and write
            current = self._store.get_run(self.id).status
            if current.is_terminal():
                raise ConfigError(
                    f"run {self.id} has already ended ({current.value}); cannot {verb} it"
                )
            if not can_transition(current, status):
                raise ConfigError(
                    f"run {self.id} is {current.value}: it cannot be marked {status.value} "
                    "from there; use run.cancel() or run.fail()"
                )
            try:
                self._store.set_status(self.id, status, error=error, expected=current)
            except InvalidTransition:
                continue
            self._record = None
            return
        raise ConfigError(f"run {self.id} kept changing status; {verb}() did not take effect")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._live is not None:
            if exc is None:
                self._live.finish(RunStatus.COMPLETED)
            else:
                self._live.finish(RunStatus.FAILED, f"{exc_type.__name__}: {exc}")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def _read_from(path: Path, offset: int, decoder: codecs.IncrementalDecoder) -> tuple[int, str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return offset, ""
    return offset + len(data), decoder.decode(data) if data else ""
