"""Read-only views of a dataset version on this machine: links into the blob store, no copy.

A view is a folder tree whose files are symbolic links to the version's blobs (read-only files
named by their content hash), so a 1 GB dataset is "mounted" in milliseconds and two runs
share its bytes. The blobs are the version's, whatever happened to the datastore since. (As
with any read-only file, a process running as root could still write through a link; jobs that
must modify their input should ask for ``as_download()``, which copies.)

Example::

    link_view(manifest, ws.blobs, run_dir / "inputs" / "mnist")
    with Dataset.get_by_name(ws, "mnist").mount() as ctx:
        os.listdir(ctx.mount_point)
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.snapshot import LocalBlobStore, Manifest
from ferry.snapshot.manifest import check_layout

if TYPE_CHECKING:
    from ferry.data.dataset import FileDataset


def link_view(manifest: Manifest, blobs: LocalBlobStore, dest: Path) -> Path:
    """Fill ``dest`` (new or empty) with links to the manifest's blobs; returns ``dest``."""
    check_layout(manifest.entries)
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise ConfigError(f"{dest} must be a new or empty folder to hold the dataset")
    dest.mkdir(parents=True, exist_ok=True)
    made = {""}
    root = os.fspath(dest)
    for rel, entry in manifest.files():
        parent = posixpath.dirname(rel)
        if parent not in made:
            os.makedirs(os.path.join(root, parent), exist_ok=True)
            made.add(parent)
        os.symlink(blobs.path(entry.digest), os.path.join(root, rel))
    return dest


def shared_view(manifest: Manifest, blobs: LocalBlobStore, views: Path) -> Path:
    """One read-only view per version, ``<views>/<manifest id>``, made once (in a temporary
    folder, then renamed) and shared by every run: a run's input is then a single link to it.
    Its folders are read-only too, so a job cannot add files other runs would see."""
    final = Path(views) / manifest.snapshot_id
    if final.is_dir():
        return final
    views.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{manifest.snapshot_id[:16]}-", dir=views))
    try:
        link_view(manifest, blobs, tmp)
        for folder, _dirs, _files in os.walk(tmp, topdown=False):
            os.chmod(folder, 0o555)
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        if tmp.exists():
            remove_tree(tmp)  # another run published the same view first, or this one failed
    return final


def remove_tree(path: Path) -> None:
    """Remove a view, read-only folders included."""
    from ferry.agent.store import remove_tree as remove

    remove(str(path))


def copy_view(manifest: Manifest, blobs: LocalBlobStore, dest: Path) -> Path:
    """Copies of the version's files in ``dest`` (new or empty), writable, verified."""
    from ferry.snapshot import materialize

    writable = Manifest(
        {rel: type(e)(e.digest, e.size, 0o644) for rel, e in manifest.files()}, manifest.algo
    )
    materialize(writable, blobs, Path(dest))
    return Path(dest)


class MountContext:
    """``FileDataset.mount()``: a read-only view while the context is open."""

    def __init__(self, dataset: FileDataset, mount_point: str | os.PathLike[str] | None) -> None:
        self.dataset = dataset
        self._given = mount_point is not None
        self._mount_point = Path(mount_point) if mount_point is not None else None
        self._started = False

    @property
    def mount_point(self) -> str:
        if self._mount_point is None:
            self._mount_point = Path(tempfile.mkdtemp(prefix="ferry-mount-"))
        return str(self._mount_point)

    def start(self) -> None:
        from ferry.data import versions

        ws = self.dataset.workspace
        record = self.dataset._version()
        manifest = versions.ensure_local(ws, record)
        link_view(manifest, ws.blobs, Path(self.mount_point))
        self._started = True

    def stop(self) -> None:
        if self._started and self._mount_point is not None:
            if self._given:
                for child in list(self._mount_point.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            else:
                shutil.rmtree(self._mount_point, ignore_errors=True)
            self._started = False

    def __enter__(self) -> MountContext:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
