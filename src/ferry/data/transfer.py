"""Moving files between this machine and a datastore: only what is missing or changed moves.

Uploads list the target once, then skip what is already there: without ``overwrite`` every
existing target (the reference's rule: "Target already exists. Skipping upload"); with it, the
targets whose content cannot have changed — the same size and modification time on a folder
store (uploads keep the source's time), and on a remote store the same size, time and ETag as
this workspace last uploaded (``cache/uploads/``). Each file is written whole (a folder store
writes a temporary name and renames it; remote objects appear when complete), so an upload cut
short leaves whole files and no half of one.

Progress is shown as the reference prints it (``Uploading an estimated of N files`` …
``Uploaded N files``) with a bar on a terminal.

Example::

    result = upload(ws, store, [(Path("data/a.csv"), "diabetes/a.csv")], overwrite=True)
    result.uploaded, result.skipped
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.data.stores import StoreFS, clean_rel
from ferry.errors import ConfigError
from ferry.snapshot.statcache import StatCache
from ferry.spec import WorkspaceServices


@dataclass(frozen=True)
class Moved:
    """What a transfer did: files moved, files left as they were, bytes moved."""

    uploaded: int
    skipped: int
    bytes: int


def common_prefix(rels: Sequence[str]) -> str:
    """The deepest folder every path is under ('' when none)."""
    if not rels:
        return ""
    split = [r.split("/")[:-1] for r in rels]
    prefix: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        prefix.append(parts[0])
    return "/".join(prefix)


def upload(
    ws: WorkspaceServices,
    store: StoreFS,
    pairs: Sequence[tuple[Path, str]],
    *,
    overwrite: bool,
    show_progress: bool,
) -> Moved:
    """Upload (local file, store path) pairs; see the module docstring for what is skipped."""
    pairs = [(Path(local), clean_rel(rel)) for local, rel in pairs]
    stats = {}
    for local, _ in pairs:
        try:
            stats[local] = st = os.stat(local)
        except OSError as exc:
            raise ConfigError(f"cannot upload {str(local)!r}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"cannot upload {str(local)!r}: it is not a file")
    if show_progress:
        print(f"Uploading an estimated of {len(pairs)} files")
    prefix = common_prefix([rel for _, rel in pairs])
    existing = {f.rel: f for f in store.find(prefix)} if pairs else {}
    state = StatCache.load(
        Path(ws.cache_dir) / "uploads", f"{store.kind}:{store.name}:{store.root}", "sha256"
    )
    todo: list[tuple[Path, str]] = []
    skipped = 0
    for local, rel in pairs:
        st = stats[local]
        there = existing.get(rel)
        if there is not None:
            if not overwrite:
                skipped += 1
                continue
            if store.is_folder:
                same = there.fingerprint[:2] == (st.st_size, st.st_mtime_ns)
            else:
                same = state.entries.get(rel) == [st.st_size, st.st_mtime_ns, *there.fingerprint]
            if same:
                skipped += 1
                continue
        todo.append((local, rel))
    total = sum(stats[local].st_size for local, _ in todo)
    with _bar(show_progress, total, "Uploading") as advance:
        store.put_many(todo, advance, stats)
    if todo and not store.is_folder:
        now = {f.rel: f for f in store.find(prefix)}
        entries = dict(state.entries)
        for local, rel in todo:
            st = stats[local]
            if rel in now:
                entries[rel] = [st.st_size, st.st_mtime_ns, *now[rel].fingerprint]
        state.save(entries, "", None)
    if show_progress:
        if skipped:
            why = "unchanged" if overwrite else "already there (overwrite=True replaces them)"
            print(f"Skipped {skipped} files {why}")
        print(f"Uploaded {len(todo)} files")
    return Moved(len(todo), skipped, total)


def files_of(src_dir: Path, target_path: str | None) -> list[tuple[Path, str]]:
    """Every file below ``src_dir`` (links followed, as the reference) → ``target_path/rel``."""
    src = Path(src_dir).expanduser()
    if not src.is_dir():
        raise ConfigError(f"src_dir {str(src)!r} is not a folder")
    target = clean_rel(target_path or "", "target_path")
    out = []
    for folder, dirs, names in os.walk(src, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder, name)
            rel = path.relative_to(src).as_posix()
            out.append((path, f"{target}/{rel}" if target else rel))
    return out


def download(
    store: StoreFS,
    target_path: Path,
    prefix: str | None,
    *,
    overwrite: bool,
    show_progress: bool,
) -> int:
    """Copy the files under ``prefix`` to ``target_path/<their store path>``; an existing file
    is left alone unless ``overwrite``. Returns how many were copied."""
    files = store.find(clean_rel(prefix or "", "prefix"))
    target = Path(target_path).expanduser()
    todo = [f for f in files if overwrite or not (target / f.rel).exists()]
    if show_progress:
        print(f"Downloading {len(todo)} files (of {len(files)}) to {target}")
    with _bar(show_progress, sum(f.size for f in todo), "Downloading") as advance:
        for f in todo:
            dest = target / f.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(f.rel, dest)
            advance(f.size)
    if show_progress:
        print(f"Downloaded {len(todo)} files")
    return len(todo)


@contextmanager
def _bar(show: bool, total: int, what: str) -> Iterator[Any]:
    """A progress bar on a terminal (stderr); a no-op elsewhere."""
    if not show or not sys.stderr.isatty() or total <= 0:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        f"[progress.description]{what}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(what, total=total)
        yield lambda n: progress.advance(task, n)
