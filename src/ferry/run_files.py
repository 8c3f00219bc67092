"""Files kept with a run, from the driver: ``upload_file``, ``upload_files``, ``upload_folder``,
``log_image``, and reading them back (``get_file_names``, ``download_file(s)``).

An upload is copied to ``<workspace>/runs/<id>/artifacts/<name>`` (a temporary file beside it,
then a rename, so a reader never sees half a file) and indexed in the run history, where the
job's own files go too. Names are checked as inside a job (:func:`ferry.runtime.validation.
artifact_parts`: relative, no ``..``, no NUL) and again as spool ingestion checks them
(:func:`ferry.ingest.safe_artifact_name`); the destination is refused when a folder on the way
is a symbolic link (:func:`ferry.ingest.safe_destination`), so a link a job left in its
artifacts never leads a driver's write elsewhere.

Example::

    run.upload_file("outputs/model.pkl", "model.pkl")
    run.upload_folder("reports", "reports/")          # reports/a.html, reports/b/c.png …
    run.log_image("roc", path="roc.png")
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, Any

from ferry.errors import ConfigError, LogTypeError
from ferry.ingest import artifact_dir, safe_artifact_name, safe_destination
from ferry.run_logging import RunLogging, checked, stored_text
from ferry.runtime import validation
from ferry.runtime.artifacts import save_plot_png, sniff_image
from ferry.tracking import AddArtifacts, ArtifactRecord

PathLike = str | os.PathLike[str]
_log = logging.getLogger("ferry.download")
_CHUNK = 1 << 20


class RunFiles(RunLogging):
    """The file half of the run API on the driver side (mixed into :class:`ferry.run.Run`)."""

    def upload_file(
        self, name: str, path_or_stream: Any, datastore_name: str | None = None
    ) -> dict[str, Any]:
        """Keep a file (a path, or a readable binary or text stream) as artifact ``name``.

        Returns ``{"name": …, "path": …}`` (``path`` relative to the workspace).
        ``datastore_name`` is accepted for compatibility; files stay in the workspace.
        """
        record = self._keep_files([(name, path_or_stream)])[0]
        return {"name": record.name, "path": record.path}

    def upload_files(
        self,
        names: Iterable[str],
        paths: Iterable[Any],
        return_artifacts: bool = False,
        timeout_seconds: int | None = None,
        datastore_name: str | None = None,
    ) -> builtins.list[dict[str, Any]] | None:
        """Keep several files; ``names`` and ``paths`` must have equal lengths (else a
        :class:`~ferry.run_logging.LogTypeError`, the reference's TypeError)."""
        names, paths = builtins.list(names), builtins.list(paths)
        if len(names) != len(paths):
            raise LogTypeError(
                f"upload_files needs one name per path: got {len(names)} names and "
                f"{len(paths)} paths"
            )
        records = self._keep_files(builtins.list(zip(names, paths, strict=True)))
        kept = [{"name": r.name, "path": r.path} for r in records]
        return kept if return_artifacts else None

    def upload_folder(
        self, name: str, path: PathLike, datastore_name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Keep every file under ``path`` as artifact ``name + "/" + relative path`` (sorted;
        links inside the folder are kept as the files they point to, as inside a job)."""
        if not isinstance(path, str | os.PathLike):
            raise ConfigError(f"upload_folder expects a folder path, got {type(path).__name__}")
        folder = Path(os.fspath(path))
        if not folder.is_dir():
            raise ConfigError(f"upload_folder expects a folder, got {os.fspath(path)!r}")
        if not isinstance(name, str):
            checked(validation.artifact_parts, name)  # the runtime's TypeError, as a ferry error
        prefix = name.rstrip("/\\")
        pairs: builtins.list[tuple[str, Any]] = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for file_name in sorted(files):
                relative = (Path(root) / file_name).relative_to(folder).as_posix()
                artifact = f"{prefix}/{relative}" if prefix else relative
                pairs.append((artifact, Path(root) / file_name))
        records = self._keep_files(pairs)
        return [{"name": r.name, "path": r.path} for r in records]

    def log_image(
        self,
        name: str,
        path: PathLike | None = None,
        plot: Any = None,
        description: str = "",
    ) -> None:
        """Log an image from a file (PNG, JPEG, GIF, BMP, TIFF, WebP or SVG) or a plot.

        Exactly one of ``path`` and ``plot`` (a matplotlib figure, or ``pyplot``). A file is kept
        under its own base name; a plot as PNG artifact ``<name>_<unix seconds>.png``. The
        metric's value is the artifact name, as inside a job.
        """
        name = checked(validation.check_metric_name, name)
        if (path is None) == (plot is None):
            raise ConfigError("run.log_image needs exactly one of path= or plot=")
        if path is not None:
            if not isinstance(path, str | os.PathLike):
                raise ConfigError(f"run.log_image path must be a file path, got {path!r}")
            try:
                kind = sniff_image(path)
            except OSError as exc:
                raise ConfigError(
                    f"run.log_image: cannot read {os.fspath(path)!r}: {exc}"
                ) from None
            if kind is None:
                raise ConfigError(
                    f"run.log_image: {os.fspath(path)!r} is not an image "
                    "(PNG, JPEG, GIF, BMP, TIFF, WebP or SVG)"
                )
            artifact = self._keep_files([(os.path.basename(os.fspath(path)), path)])[0].name
        else:
            temp = checked(save_plot_png, plot)
            try:
                stamp = int(time.time())
                plot_name = validation.image_artifact_name(name, stamp, ".png")
                artifact = self._keep_files([(plot_name, temp)])[0].name
            finally:
                os.unlink(temp)
        self._log_metric(name, validation.IMAGE, artifact, description)

    def get_file_names(self) -> builtins.list[str]:
        """The names of the files kept with the run (its own, the job's and ./outputs)."""
        self._flush()
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

    # writing ----------------------------------------------------------------------------------
    def _keep_files(self, pairs: builtins.list[tuple[str, Any]]) -> builtins.list[ArtifactRecord]:
        """Copy each (name, source) into the run's artifacts, then index them all at once."""
        checked_pairs = [(self._artifact_name(name), source) for name, source in pairs]
        root = artifact_dir(self.workspace.path, self.id)
        records: builtins.list[ArtifactRecord] = []
        try:
            for name, source in checked_pairs:
                dest = safe_destination(root, name)
                if dest is None:
                    raise ConfigError(
                        f"run {self.id}: artifact {name!r} would be written through a symbolic "
                        "link in the run's artifacts; choose another name"
                    )
                size = _copy_atomically(source, dest, name)
                rel = str(dest.relative_to(self.workspace.path))
                records.append(ArtifactRecord(self.id, name, rel, size))
        finally:  # the files copied before a failure are kept and listed
            if records:
                self._apply([AddArtifacts(tuple(records))])
        return records

    def _artifact_name(self, name: object) -> str:
        clean = "/".join(checked(validation.artifact_parts, name))
        if safe_artifact_name(clean) != clean:  # the job's check and ingestion's agree
            raise ConfigError(f"artifact name {name!r} is not safe to keep; use a relative name")
        if stored_text(clean) != clean:
            raise ConfigError(
                f"artifact name {name!r} is not valid text (a byte that is not UTF-8); "
                "rename the file or give the name explicitly"
            )
        return clean


def _copy_atomically(source: Any, dest: Path, name: str) -> int:
    """Copy ``source`` (a path or a readable stream) to ``dest`` in one step; its size."""
    with _opened(source, name) as stream:
        _private_folders(dest.parent)
        temp = dest.parent / f".ferry-{os.urandom(6).hex()}.part"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    out.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            os.replace(temp, dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return dest.stat().st_size


def _private_folders(folder: Path) -> None:
    """Create ``folder`` and the folders above it that are missing, private to the user (0700),
    as ingestion leaves a job's files."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def _opened(source: Any, name: str) -> AbstractContextManager[IO[Any]]:
    """``source`` open for reading: a path is opened here, a stream is read as it is."""
    if isinstance(source, str | os.PathLike):
        path = Path(os.fspath(source))
        if path.is_dir():
            raise ConfigError(
                f"artifact {name!r}: {str(path)!r} is a folder; use upload_folder for folders"
            )
        try:
            return open(path, "rb")
        except OSError as exc:
            raise ConfigError(
                f"artifact {name!r}: cannot read {str(path)!r}: {exc.strerror or exc}"
            ) from None
    if not callable(getattr(source, "read", None)):
        raise ConfigError(
            f"artifact {name!r}: expected a file path or a readable stream, got "
            f"{type(source).__name__}"
        )
    return nullcontext(source)
