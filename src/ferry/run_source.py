"""What a run ran: its source snapshot and its environment (``get_snapshot_id``,
``restore_snapshot``, ``take_snapshot``, ``diff``, ``rerun``, ``get_environment``).

A snapshot is content-addressed (:mod:`ferry.snapshot`): taking one of an unchanged folder
stores nothing new. ``take_snapshot`` gives a run without one (an interactive run started with
``snapshot_directory=None``, or a script submitted with ``history.snapshot_project=False``) the
snapshot of a file or a folder, recorded as its ``ContentSnapshotId`` property as the reference
does; a run that has one already refuses a second, as the reference does.

Example::

    run.get_environment()                   # Environment(name='sk', version='1')
    run.restore_snapshot(path="src-of-run")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.run_state import RunState

if TYPE_CHECKING:
    from ferry.environment import Environment
    from ferry.run import Run

SNAPSHOT_PROPERTY = "ContentSnapshotId"


class RunSource(RunState):
    """The source and environment half of the run API (mixed into :class:`ferry.run.Run`)."""

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

    def take_snapshot(self, file_or_folder_path: str | os.PathLike[str]) -> str:
        """Snapshot a file or a folder into the workspace as this run's source; returns the
        snapshot id (also the run's ``ContentSnapshotId`` property)."""
        from ferry.submit import snapshot_source

        if not isinstance(file_or_folder_path, str | os.PathLike):
            raise ConfigError(
                f"take_snapshot expects a file or folder path, got {file_or_folder_path!r}"
            )
        existing = self.get_snapshot_id()
        if existing is not None:
            raise ConfigError(
                f"Cannot take snapshot as the run already has one: {existing} (run {self.id})"
            )
        source = Path(file_or_folder_path).resolve()
        if not source.exists():
            raise ConfigError(f"take_snapshot: no file or folder at {str(source)!r}")
        with tempfile.TemporaryDirectory(prefix="ferry-snapshot-") as scratch:
            folder = source
            if not source.is_dir():  # one file: the snapshot of a folder holding only it
                folder = Path(scratch)
                shutil.copy2(source, folder / source.name)
            try:
                info, properties, _seconds = snapshot_source(self.workspace, folder)
            except OSError as exc:
                raise ConfigError(f"take_snapshot: cannot read {str(source)!r}: {exc}") from None
        properties[SNAPSHOT_PROPERTY] = str(info["id"])
        self._store.add_properties(self.id, properties)  # immutable: a second id is refused
        self._store.update_run(self.id, snapshot=info)
        self._record = None
        return str(info["id"])

    def diff(self, other: Run) -> tuple[Any, str]:
        """Files added, removed and changed from this run's snapshot to ``other``'s, and a
        unified diff of the text files."""
        from ferry.snapshot import diff, unified_diff

        old, new = self._manifest(), other._manifest()
        return diff(old, new), unified_diff(old, new, self.workspace.blobs)

    def rerun(self, compute_target: Any = None, experiment: Any = None) -> Run:
        """Submit the stored snapshot again with the same script, arguments and environment,
        as a new run linked to this one (property ``ferry.rerun_of``)."""
        from ferry.run import Run
        from ferry.submit import rerun

        assert isinstance(self, Run)
        return rerun(self, compute_target=compute_target, experiment=experiment)

    def get_environment(self) -> Environment:
        """The environment the run was submitted with, from its stored definition (a child
        run ran in its parent's job, so in its parent's environment)."""
        from ferry.environment import Environment

        record = self._refresh()
        definition = record.definition.get("environment")
        while not isinstance(definition, dict) and record.parent_id:
            record = self._store.get_run(record.parent_id)
            definition = record.definition.get("environment")
        if not isinstance(definition, dict):
            raise ConfigError(
                f"run {self.id} has no environment: it was not submitted with one "
                f"(its type is {self.type}); get_environment() answers for submitted runs"
            )
        return Environment.from_dict(definition, where=f"the environment of run {self.id}")
