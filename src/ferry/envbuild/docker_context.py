"""Docker build contexts: the files a build sends, checked, digested and packed.

The files are the ones ``docker build`` sends: the folder minus its ``.dockerignore`` patterns
(read by the ``docker`` library's own rules), the Dockerfile always in. The digest covers each
file's path, mode and contents, taken when the environment is created (as the reference uploads
the folder then); a build packs the folder again and refuses when it no longer has that digest,
so an image is never built from files other than the ones its hash names. A symbolic link that
leads outside the folder, or a Dockerfile outside it, is refused: ``docker build`` would send
the link, not what it points to, and the image would not be what the folder shows.

Example::

    digest = context_digest("/src/image", "Dockerfile")
    with context_archive("/src/image", "Dockerfile", digest) as archive:
        client.images.build(fileobj=archive, custom_context=True, dockerfile="Dockerfile")
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from ferry.errors import ConfigError


def _included(root: Path, dockerfile: str) -> list[str]:
    """Relative paths of the files ``docker build`` sends (``.dockerignore`` honoured)."""
    from docker.utils.build import exclude_paths

    patterns: list[str] = []
    ignore = root / ".dockerignore"
    if ignore.is_file():
        lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
        patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return sorted(exclude_paths(str(root), patterns, dockerfile=dockerfile))


def check_context(location: str | os.PathLike[str], dockerfile: str = "Dockerfile") -> Path:
    """The context folder, resolved; ConfigError when it or its Dockerfile is not usable."""
    root = Path(location).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"the Docker build context {str(root)!r} is not a folder; give the folder holding "
            "the Dockerfile and the files it copies"
        )
    root = root.resolve()
    target = (root / dockerfile).resolve()
    if not target.is_relative_to(root):
        raise ConfigError(
            f"the Dockerfile {dockerfile!r} is outside the build context {str(root)!r}; move it "
            "into the folder (the engine only sees the context's files)"
        )
    if not target.is_file():
        raise ConfigError(f"the build context {str(root)!r} has no Dockerfile at {dockerfile!r}")
    return root


def _check_links(root: Path, paths: list[str]) -> None:
    for rel in paths:
        path = root / rel
        if path.is_symlink():
            target = (path.parent / os.readlink(path)).resolve()
            if not target.is_relative_to(root):
                raise ConfigError(
                    f"the build context {str(root)!r} has {rel!r}, a link to {str(target)!r} "
                    "outside it; docker build would send the link, not the file: copy the file "
                    "into the context (or list the link in .dockerignore)"
                )


def context_digest(location: str | os.PathLike[str], dockerfile: str = "Dockerfile") -> str:
    """The SHA-256 of the files the context sends: paths, modes and contents."""
    root = check_context(location, dockerfile)
    paths = _included(root, dockerfile)
    _check_links(root, paths)
    digest = hashlib.sha256()
    for rel in paths:
        path = root / rel
        st = path.lstat()
        digest.update(f"{rel}\0{st.st_mode & 0o7777 | (st.st_mode & 0o170000)}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def context_archive(location: str, dockerfile: str, digest: str) -> IO[bytes]:
    """A tar of the context (a temporary file, rewound) after checking it still has
    ``digest``; ConfigError naming the folder when it changed."""
    from docker.utils.build import create_archive

    found = context_digest(location, dockerfile)
    if digest and found != digest:
        raise ConfigError(
            f"the build context {location!r} changed since its environment was created (its "
            "files are part of the environment's hash); create the environment again with "
            "Environment.from_docker_build_context to build from the files as they are now"
        )
    root = check_context(location, dockerfile)
    fileobj = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    create_archive(root=str(root), files=_included(root, dockerfile), fileobj=fileobj)
    fileobj.seek(0)
    return fileobj
