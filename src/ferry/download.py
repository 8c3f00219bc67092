"""Copy a run's kept files out of the workspace, trusting neither the job nor the store.

A job can leave symbolic links in ``./outputs`` (they are kept as links), and a tampered or shared
store can hold artifact rows whose names climb out with ``..`` or whose stored paths point at any
file on the machine. So a download here:

* validates each artifact name (relative, no ``..``, no absolute path, backslashes count as
  separators) with :func:`ferry.ingest.safe_artifact_name`;
* accepts a stored path only inside the run's own ``runs/<id>/artifacts`` or ``runs/<id>/user_logs``
  folder, and opens it one component at a time with ``O_NOFOLLOW`` below that folder, so a link
  made by the job is never followed: the file is skipped with a message instead;
* writes under the destination folder one component at a time with ``O_NOFOLLOW`` too, so a link
  already in the destination is never written through.

Example::

    report = download_artifacts(ws.path, run_id, artifacts, Path("dl"))
    report.written   # ['dl/outputs/model.pt', ...]
    report.skipped   # ["outputs/h: a symbolic link made by the job; not followed", ...]
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from ferry.errors import ConfigError
from ferry.ingest import safe_artifact_name
from ferry.tracking import ArtifactRecord

#: the folders of ``runs/<id>/`` that hold a run's kept files
KEPT_FOLDERS = ("artifacts", "user_logs")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Skipped(Exception):
    """One file cannot be downloaded safely; the message names it and says why."""


class DownloadedFiles(list[str]):
    """The paths written (a plain list, as before) and, in ``skipped``, one message per file
    left out."""

    def __init__(self, written: Iterable[str] = (), skipped: Iterable[str] = ()) -> None:
        super().__init__(written)
        self.skipped: list[str] = list(skipped)


def checked_name(name: str) -> str:
    """The artifact name as a safe relative path, or :class:`Skipped`."""
    clean = safe_artifact_name(name) if "\0" not in name else None
    if clean is None:
        raise Skipped(f"{name!r}: not a relative path inside the run (absolute or with '..')")
    return clean


def source_parts(run_id: str, stored_path: str) -> tuple[str, list[str]]:
    """``(kept folder, components below it)`` of a stored path, or :class:`Skipped` when the
    path is not inside the run's own artifacts or user_logs folder."""
    parts = stored_path.split("/")
    if (
        stored_path.startswith("/")
        or "\0" in stored_path
        or len(parts) < 4
        or parts[:2] != ["runs", run_id]
        or parts[2] not in KEPT_FOLDERS
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise Skipped(
            f"its stored path {stored_path!r} is not inside runs/{run_id}/artifacts "
            f"or runs/{run_id}/user_logs of the workspace"
        )
    return parts[2], parts[3:]


def open_source(workspace: Path, run_id: str, stored_path: str) -> int:
    """An open descriptor on the stored file, never through a symbolic link below the run's
    kept folder; :class:`Skipped` otherwise."""
    folder, parts = source_parts(run_id, stored_path)
    try:
        fd = os.open(workspace / "runs" / run_id / folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise Skipped(
            f"its folder runs/{run_id}/{folder} cannot be opened ({exc.strerror})"
        ) from exc
    try:
        fd = _walk(fd, parts[:-1], create=False, where="the run's folder")
        try:
            src = os.open(parts[-1], _READ_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise _refusal(exc, fd, parts[-1], "the job") from exc
    finally:
        os.close(fd)
    info = os.fstat(src)
    if not stat.S_ISREG(info.st_mode):
        os.close(src)
        raise Skipped("not a regular file; skipped")
    os.set_blocking(src, True)
    return src


def write_under(root_fd: int, rel: str, src: int) -> None:
    """Copy ``src`` to ``rel`` below the open folder ``root_fd`` (folders made as needed),
    never through a symbolic link already there."""
    parts = rel.split("/")
    fd = _walk(os.dup(root_fd), parts[:-1], create=True, where="the destination")
    try:
        write_at(fd, parts[-1], src)
    finally:
        os.close(fd)


def write_at(dir_fd: int, name: str, src: int) -> None:
    """Copy ``src`` to ``name`` in the open folder ``dir_fd``; a link or a non-file there is
    refused, not written through."""
    try:
        out = os.open(name, _WRITE_FLAGS, 0o666, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(exc, dir_fd, name, "the destination") from exc
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise Skipped(f"the destination {name!r} is not a regular file; not overwritten")
    os.set_blocking(out, True)
    try:
        with open(src, "rb", closefd=False) as reader, open(out, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    except OSError as exc:
        raise Skipped(f"writing {name!r} failed ({exc.strerror})") from exc


def download_artifacts(
    workspace: Path,
    run_id: str,
    artifacts: Sequence[ArtifactRecord],
    output_directory: Path,
    rel_names: Sequence[str | None] | None = None,
) -> DownloadedFiles:
    """Copy each artifact to ``output_directory/<its name>`` (or ``rel_names[i]`` when given,
    ``None`` meaning its name); files that are not safe to copy are skipped with a message."""
    report = DownloadedFiles()
    try:
        output_directory.mkdir(parents=True, exist_ok=True)
        root = os.open(output_directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(
            f"cannot download into {str(output_directory)!r}: {exc.strerror}"
        ) from exc
    try:
        for i, artifact in enumerate(artifacts):
            try:
                rel = checked_name(artifact.name)
                other = rel_names[i] if rel_names else None
                if other:
                    rel = checked_name(other)
                src = open_source(workspace, run_id, artifact.path)
                try:
                    write_under(root, rel, src)
                finally:
                    os.close(src)
            except Skipped as why:
                report.skipped.append(f"{artifact.name!r} skipped: {why}")
                continue
            report.append(str(output_directory / rel))
    finally:
        os.close(root)
    return report


def download_to_paths(
    workspace: Path, run_id: str, artifacts: Sequence[ArtifactRecord], paths: Sequence[str]
) -> DownloadedFiles:
    """The reference's ``output_paths``: artifact ``i`` goes to ``paths[i]`` (paths the caller
    chose; only the final name is opened without following a link)."""
    if len(paths) != len(artifacts):
        raise ConfigError(
            f"output_paths has {len(paths)} path(s) for {len(artifacts)} file(s) of run "
            f"{run_id}; give one path per file (in name order), or use output_directory"
        )
    report = DownloadedFiles()
    for artifact, path in zip(artifacts, paths, strict=True):
        try:
            checked_name(artifact.name)
            copy_to_file(workspace, run_id, artifact, Path(path))
        except Skipped as why:
            report.skipped.append(f"{artifact.name!r} skipped: {why}")
            continue
        report.append(str(path))
    return report


def copy_to_file(workspace: Path, run_id: str, artifact: ArtifactRecord, dest: Path) -> None:
    """Copy one artifact to the file ``dest`` (its folder is created); :class:`Skipped` when
    it is not safe."""
    src = open_source(workspace, run_id, artifact.path)
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            folder = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise Skipped(f"cannot write into {str(dest.parent)!r} ({exc.strerror})") from exc
        try:
            write_at(folder, dest.name, src)
        finally:
            os.close(folder)
    finally:
        os.close(src)


def _walk(fd: int, parts: Sequence[str], *, create: bool, where: str) -> int:
    """Descend ``parts`` from the open folder ``fd`` (which is consumed) without following a
    link; returns the open descriptor of the last folder."""
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except OSError:
                    pass  # already there, or not possible: the open below says which
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, fd, part, where) from exc
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refusal(exc: OSError, dir_fd: int, name: str, who: str) -> Skipped:
    """Why ``name`` could not be opened, in words."""
    try:
        is_link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        is_link = False
    if is_link or exc.errno == errno.ELOOP:
        if who == "the job":
            return Skipped(f"{name!r} is a symbolic link made by the job; not followed")
        return Skipped(f"{name!r} in {who} is a symbolic link; not written through")
    if exc.errno == errno.ENOTDIR:
        return Skipped(f"{name!r} in {who} is not a folder")
    return Skipped(f"{name!r} in {who} cannot be opened ({exc.strerror})")
