"""Errors of the snapshot machinery, all under :class:`ferry.errors.SnapshotError`.

::

    SnapshotError
    ├── SnapshotLimitError   the tree is over a size or file-count limit (nothing was stored)
    ├── UnreadableFilesError files that cannot be read; ``.paths`` lists them
    ├── CorruptBlobError     a blob's bytes do not match its digest; ``.digest`` names it
    ├── MissingBlobError     the store has no blob with that digest
    └── UnsafePathError      a manifest entry would write outside the destination
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.errors import SnapshotError


class SnapshotLimitError(SnapshotError):
    """The source folder is over a configured limit; nothing was stored."""


class UnreadableFilesError(SnapshotError):
    """Some files of the source folder cannot be read; nothing was recorded."""

    def __init__(self, message: str, paths: Sequence[str]) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


class CorruptBlobError(SnapshotError):
    """A blob read back from a store does not hash to its name."""

    def __init__(self, digest: str, detail: str = "") -> None:
        message = f"blob {digest} is corrupt: its content does not match its digest"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.digest = digest


class MissingBlobError(SnapshotError):
    """The store holds no blob with the asked digest."""

    def __init__(self, digest: str, where: str = "") -> None:
        super().__init__(
            f"blob {digest} is missing from the store{f' at {where}' if where else ''}"
        )
        self.digest = digest


class UnsafePathError(SnapshotError):
    """A manifest path is absolute, has '..' or would otherwise escape the destination."""
