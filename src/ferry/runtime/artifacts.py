"""Artifacts a script uploads: ``upload_file``, ``upload_folder``, ``upload_files``, ``log_image``.

Part of :class:`~.run.Run`. Each file is copied into the spool (temp file + rename) before its
``file`` record is written, so the supervisor never reads a record whose file is missing.

``imghdr`` is gone from Python 3.13, so ``log_image`` recognises the formats the reference accepted
(and SVG and WebP) from their first bytes. Plots are saved through their own ``savefig`` (a
matplotlib figure, or the ``matplotlib.pyplot`` module for its current figure); matplotlib is
never imported.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from .encoding import show
from .validation import artifact_parts, check_metric_name, image_artifact_name

Record = Dict[str, Any]
PathLike = Union[str, "os.PathLike[str]"]


class ArtifactsMixin:
    """The upload half of the run API (mixed into :class:`~.run.Run`)."""

    _id: str
    _offline: bool
    _emit: Callable[[Record], None]

    def _store_file(self, name: str, source: Any) -> Optional[str]:
        raise NotImplementedError

    def _metric(
        self, name: Any, kind: str, value: Any, description: Any, shown: Any = None
    ) -> None:
        raise NotImplementedError

    def _records(self) -> List[Record]:
        raise NotImplementedError

    def upload_file(
        self, name: str, path_or_stream: Any, datastore_name: Optional[str] = None
    ) -> Dict[str, Any]:
        """Keep a file (a path or a readable stream) as artifact ``name``.

        Returns ``{"name": ..., "path": ...}`` (``path`` relative to the spool folder).
        ``datastore_name`` is accepted for compatibility and ignored.
        """
        if self._offline:
            show(f"Attempted to track file {name} at {path_or_stream}")
        return self._attach(name, path_or_stream)

    def upload_folder(
        self, name: str, path: PathLike, datastore_name: Optional[str] = None
    ) -> List[Dict[str, Any]]:
        """Keep every file under ``path`` as artifact ``name + "/" + relative path``.

        Relative paths use forward slashes; files are visited in sorted order.
        """
        folder = os.fspath(path)
        if not os.path.isdir(folder):
            raise NotADirectoryError(f"upload_folder expects a folder, got {folder!r}")
        if self._offline:
            show(f"Attempted to track folder {name} at {path}")
        prefix = name.rstrip("/\\") if isinstance(name, str) else name
        uploaded = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for file_name in sorted(files):
                full = os.path.join(root, file_name)
                relative = os.path.relpath(full, folder).replace(os.sep, "/")
                artifact = f"{prefix}/{relative}" if prefix else relative
                uploaded.append(self._attach(artifact, full))
        return uploaded

    def upload_files(
        self,
        names: Iterable[str],
        paths: Iterable[Any],
        return_artifacts: bool = False,
        timeout_seconds: Optional[int] = None,
        datastore_name: Optional[str] = None,
    ) -> Optional[List[Dict[str, Any]]]:
        """Keep several files; ``names`` and ``paths`` must have equal lengths (else TypeError)."""
        names = list(names)
        paths = list(paths)
        if len(names) != len(paths):
            raise TypeError(
                f"upload_files needs one name per path: got {len(names)} names and "
                f"{len(paths)} paths"
            )
        if self._offline:
            show(f"Attempted to track files {names} at {paths}")
        pairs = zip(names, paths)
        uploaded = [self._attach(name, path) for name, path in pairs]
        return uploaded if return_artifacts else None

    def get_file_names(self) -> List[str]:
        """The artifact names uploaded to this run so far."""
        return list(
            dict.fromkeys(
                str(r.get("name"))
                for r in self._records()
                if r.get("k") == "file" and r.get("run") == self._id
            )
        )

    def log_image(
        self,
        name: str,
        path: Optional[PathLike] = None,
        plot: Any = None,
        description: str = "",
    ) -> None:
        """Log an image from a file (PNG, JPEG, GIF, BMP, TIFF, WebP or SVG) or a plot.

        Exactly one of ``path`` and ``plot`` (a matplotlib figure, or ``pyplot``). A file is kept
        under its own base name; a plot is saved as PNG artifact ``<name>_<unix seconds>.png``.
        The metric's value is the artifact name.
        """
        name = check_metric_name(name)
        if (path is None) == (plot is None):
            raise ValueError("run.log_image needs exactly one of path= or plot=")
        if path is not None:
            if sniff_image(path) is None:
                raise ValueError(
                    f"run.log_image: {os.fspath(path)!r} is not an image "
                    "(PNG, JPEG, GIF, BMP, TIFF, WebP or SVG)"
                )
            artifact = os.path.basename(os.fspath(path))
            self._attach(artifact, path)
            self._metric(name, "image", artifact, description, shown=path)
            return
        artifact = image_artifact_name(name, int(time.time()), ".png")
        if self._offline:
            if not callable(getattr(plot, "savefig", None)):
                save_plot_png(plot)  # raises the TypeError
        else:
            temp = save_plot_png(plot)
            try:
                self._attach(artifact, temp)
            finally:
                os.unlink(temp)
        self._metric(name, "image", artifact, description, shown=plot)

    def _attach(self, name: str, source: Any) -> Dict[str, Any]:
        clean = "/".join(artifact_parts(name))
        path = self._store_file(clean, source)
        self._emit({"k": "file", "run": self._id, "ts": time.time(), "name": clean, "path": path})
        return {"name": clean, "path": path}


_SNIFF_BYTES = 4096


def sniff_image(path: Union[str, "os.PathLike[str]"]) -> Optional[str]:
    """Return the image format of the file at ``path`` (``"png"``, ``"jpeg"`` …) or None."""
    with open(os.fspath(path), "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> Optional[str]:
    """Return the image format whose magic bytes start ``head``, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if _looks_like_svg(head):
        return "svg"
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<svg"):
        return True
    return text.startswith((b"<?xml", b"<!--", b"<!DOCTYPE")) and b"<svg" in text


def save_plot_png(plot: Any) -> str:
    """Save ``plot`` (a figure or ``pyplot``) as PNG into a temporary file; return its path.

    The caller removes the file. ``TypeError`` when ``plot`` has no ``savefig``.
    """
    savefig = getattr(plot, "savefig", None)
    if not callable(savefig):
        raise TypeError(
            "run.log_image plot must be a matplotlib figure or matplotlib.pyplot, "
            f"got {type(plot).__name__}"
        )
    import tempfile

    fd, path = tempfile.mkstemp(prefix="ferry-plot-", suffix=".png")
    os.close(fd)
    try:
        savefig(path, format="png")
    except BaseException:
        os.unlink(path)
        raise
    return path
