"""Errors of the snapshot machinery, all under :class:`ferry.errors.SnapshotError`.

::

    SnapshotError
    ├── SnapshotLimitError   the tree is over a size or file-count limit (nothing was stored)
    ├── UnreadableFilesError files that cannot be read; ``.paths`` lists them
    ├── CorruptBlobError     a blob's bytes do not match its digest; ``.digest`` names it
    │   └── CorruptBlobsError  several at once; ``.errors`` lists them
    ├── MissingBlobError     the store has no blob with that digest
    └── UnsafePathError      a manifest entry would write outside the destination
"""

from __future__ import annotations

from collections.abc import Sequence

from ferry.errors import SnapshotError

#: How to recover from a blob that was corrupt: the intact content must be stored again, and only
#: a snapshot of the source folder can do that (a rerun reuses the stored snapshot as it is).
RESUBMIT_HINT = (
    "submit from the source folder again to store the intact content (after that, "
    "`ferry runs rerun` of runs that used it works again)"
)


class SnapshotLimitError(SnapshotError):
    """The source folder is over a configured limit; nothing was stored."""


class UnreadableFilesError(SnapshotError):
    """Some files of the source folder cannot be read; nothing was recorded."""

    def __init__(self, message: str, paths: Sequence[str]) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


class CorruptBlobError(SnapshotError):
    """A blob read back from a store does not hash to its name.

    The store sets such a blob aside, so the next snapshot of the intact content stores it
    again; ``set_aside`` says where it went, or is None when it could not be moved (then the
    message asks the user to delete ``path``).
    """

    def __init__(self, digest: str, path: str | None = None, set_aside: str | None = None) -> None:
        message = f"blob {digest} is corrupt: its content does not match its digest"
        if path is not None:
            message += f" (file {path})"
        if set_aside is not None:
            message += f". It has been set aside as {set_aside}; {RESUBMIT_HINT}"
        elif path is not None:
            message += f". Delete that file, then {RESUBMIT_HINT}"
        else:
            message += f". {RESUBMIT_HINT[0].upper()}{RESUBMIT_HINT[1:]}"
        super().__init__(message)
        self.digest = digest
        self.path = path
        self.set_aside = set_aside


class CorruptBlobsError(CorruptBlobError):
    """Several blobs were found corrupt in one restore; each was set aside (``errors``)."""

    def __init__(self, errors: Sequence[CorruptBlobError]) -> None:
        lines = [
            f"  {e.digest}: "
            + (f"set aside as {e.set_aside}" if e.set_aside else f"delete {e.path or 'it'}")
            for e in errors
        ]
        SnapshotError.__init__(
            self,
            f"{len(errors)} blobs are corrupt (their content does not match their digest); "
            f"{RESUBMIT_HINT}:\n" + "\n".join(lines),
        )
        self.digest, self.path, self.set_aside = (
            errors[0].digest,
            errors[0].path,
            errors[0].set_aside,
        )
        self.errors = tuple(errors)

    @staticmethod
    def of(errors: Sequence[CorruptBlobError]) -> CorruptBlobError:
        """One error for ``errors``: itself when there is only one."""
        return errors[0] if len(errors) == 1 else CorruptBlobsError(errors)


class MissingBlobError(SnapshotError):
    """The store holds no blob with the asked digest."""

    def __init__(self, digest: str, where: str = "", set_aside: str | None = None) -> None:
        message = f"blob {digest} is missing from the store{f' at {where}' if where else ''}"
        if set_aside is not None:
            message += f": it was found corrupt and set aside as {set_aside}; {RESUBMIT_HINT}"
        super().__init__(message)
        self.digest = digest


class UnsafePathError(SnapshotError):
    """A manifest path is absolute, has '..' or would otherwise escape the destination."""
