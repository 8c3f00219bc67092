"""Content-addressed snapshots of a source folder: take, store, diff, restore; git capture.

The pieces, each in its own module:

* :mod:`.manifest` — the pure data: :class:`Manifest`, :func:`diff`;
* :mod:`.ignore`, :mod:`.walk` — which files a snapshot holds (``.ferryignore`` >
  ``.amlignore`` > ``.gitignore`` in every folder, plus default excludes);
* :mod:`.blobstore` — the :class:`BlobStore` contract and :class:`LocalBlobStore`;
* :mod:`.snapshotter` — :func:`take_snapshot` (stat cache in :mod:`.statcache`, limits in
  :mod:`.limits`), :func:`load_manifest`;
* :mod:`.preview`, :mod:`.materialize`, :mod:`.textdiff`, :mod:`.git`.

Example::

    store = LocalBlobStore(workspace / "blobs")
    result = take_snapshot(Path("src"), store, workspace / "cache" / "snapshots")
    materialize(load_manifest(store, result.snapshot_id), store, run_dir / "code")
"""

from ferry.snapshot.blobstore import BlobStore, LocalBlobStore, MemoryBlobStore
from ferry.snapshot.errors import (
    CorruptBlobError,
    CorruptBlobsError,
    MissingBlobError,
    SnapshotLimitError,
    UnreadableFilesError,
    UnsafePathError,
)
from ferry.snapshot.git import GitInfo, capture_git
from ferry.snapshot.ignore import DEFAULT_EXCLUDES, IGNORE_FILES, SECRET_EXCLUDES
from ferry.snapshot.limits import SnapshotLimits
from ferry.snapshot.manifest import FileEntry, LinkEntry, Manifest, ManifestDiff, diff
from ferry.snapshot.materialize import materialize, restore, restore_zip
from ferry.snapshot.preview import RuleEffect, SnapshotPreview, preview
from ferry.snapshot.snapshotter import (
    SnapshotResult,
    SnapshotStats,
    load_manifest,
    save_manifest,
    take_snapshot,
)
from ferry.snapshot.textdiff import unified_diff

__all__ = [
    "DEFAULT_EXCLUDES",
    "IGNORE_FILES",
    "SECRET_EXCLUDES",
    "BlobStore",
    "CorruptBlobError",
    "CorruptBlobsError",
    "FileEntry",
    "GitInfo",
    "LinkEntry",
    "LocalBlobStore",
    "Manifest",
    "ManifestDiff",
    "MemoryBlobStore",
    "MissingBlobError",
    "RuleEffect",
    "SnapshotLimitError",
    "SnapshotLimits",
    "SnapshotPreview",
    "SnapshotResult",
    "SnapshotStats",
    "UnreadableFilesError",
    "UnsafePathError",
    "capture_git",
    "diff",
    "load_manifest",
    "materialize",
    "preview",
    "restore",
    "restore_zip",
    "save_manifest",
    "take_snapshot",
    "unified_diff",
]
