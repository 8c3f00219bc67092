"""ferry's default base image, made from Debian's packages where no registry is reachable.

A Docker environment that names no image (``env.docker.enabled = True`` alone, the reference's
default ``mcr.microsoft.com/azureml/…`` images, ferry's curated names) starts from this image:
Debian (``bookworm``, minimal) with Python 3, CA certificates, ``python`` naming ``python3``
and Open MPI (``openmpi-bin``: the ranks of an MPI run in containers load its library and
connect to the host's ``mpirun``, which must be the same series — Debian's, on these machines).
It is made once with ``mmdebstrap`` into a root file system tarball, kept in a cache folder
(``$FERRY_DOCKER_BASE_CACHE``, else ``~/.cache/ferry/docker-base``), and imported into each
engine that lacks it (``docker import``: seconds), tagged by the hash of its recipe. Only Debian's
package archive is needed, never a container registry.

A Python other than the base's (the reference's environments ask for 3.8) is this machine's own
interpreter of that version, copied into a variant of the base at the same path
(:func:`python_variant`), so it finds its standard library and shared library there.

Example::

    tag = ensure_default_base(client, print)      # "ferry-base:bookworm-1a2b3c4d"
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.errors import EnvironmentBuildError

Log = Callable[[str], None]

SUITE = "bookworm"
PACKAGES = ("python3", "python-is-python3", "ca-certificates", "openmpi-bin")
#: bump when the recipe changes what the image holds (its tag changes, so does every image
#: built on it: see ``docker_spec.base_of``)
BASE_RECIPE = 2
REPOSITORY = "ferry-base"
_CHANGES = ["ENV LANG=C.UTF-8", 'CMD ["python3"]']


def base_tag() -> str:
    """The default base image's tag: the suite and the hash of its recipe."""
    recipe = json.dumps([BASE_RECIPE, SUITE, sorted(PACKAGES), _CHANGES], sort_keys=True)
    return f"{REPOSITORY}:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"


def cache_dir() -> Path:
    folder = os.environ.get("FERRY_DOCKER_BASE_CACHE")
    return Path(folder) if folder else Path.home() / ".cache" / "ferry" / "docker-base"


def _has(client: Any, ref: str) -> bool:
    import docker

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_default_base(client: Any, log: Log) -> str:
    """The default base image on ``client``'s engine (imported, and made first when needed)."""
    tag = base_tag()
    if _has(client, tag):
        return tag
    from filelock import FileLock

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"{tag.split(':', 1)[1]}.tar"
    with FileLock(str(tarball) + ".lock"):
        if _has(client, tag):
            return tag
        if not tarball.is_file():
            _debootstrap(tarball, log)
        log(f"docker: importing ferry's default base image {tag} from {tarball}")
        started = time.monotonic()
        repository, _, name = tag.partition(":")
        try:
            client.api.import_image_from_file(
                str(tarball), repository=repository, tag=name, changes=_CHANGES
            )
        except Exception as exc:
            raise EnvironmentBuildError(f"importing {tarball} into Docker failed: {exc}") from exc
        log(f"docker: imported {tag} in {time.monotonic() - started:.1f} s")
    return tag


def _debootstrap(tarball: Path, log: Log) -> None:
    """Make the root file system tarball with mmdebstrap (temp file, then rename)."""
    exe = shutil.which("mmdebstrap")
    if exe is None:
        raise EnvironmentBuildError(
            "ferry's default base image is made from Debian's packages with mmdebstrap, which "
            "is not installed here: install it (`apt-get install mmdebstrap`), or name an image "
            "your engine has with env.docker.base_image (or Environment.from_docker_image)"
        )
    mode = "root" if os.geteuid() == 0 else "unshare"
    partial = tarball.with_suffix(f".partial-{os.getpid()}.tar")
    argv = [exe, "--variant=minbase", f"--mode={mode}", f"--include={','.join(PACKAGES)}",
            "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*", SUITE, str(partial)]  # fmt: skip
    log(f"docker: making ferry's default base image from Debian {SUITE} ({' '.join(argv)})")
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-40:], line.rstrip()]
        log(f"  {line.rstrip()}")
    if proc.wait() != 0:
        partial.unlink(missing_ok=True)
        raise EnvironmentBuildError(
            f"mmdebstrap could not make the default base image (exit {proc.returncode}):\n"
            + "\n".join(tail[-15:])
        )
    os.replace(partial, tarball)
    log(f"docker: base file system made in {time.monotonic() - started:.1f} s ({tarball})")


def python_variant(client: Any, base: str, prefix: str, version: str, log: Log) -> str:
    """``base`` with this machine's Python installed at ``prefix`` (its ``sys.base_prefix``),
    tagged ``<base>-py<version>``; made once per engine. The copy leaves out the interpreter's
    own site-packages and test suite."""
    tag = f"{base}-py{version}"
    if _has(client, tag):
        return tag
    log(f"docker: adding this machine's Python {version} ({prefix}) to {base}")
    archive = io.BytesIO()
    skip = (f"{prefix}/lib/python{version}/site-packages/", f"{prefix}/lib/python{version}/test/")

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        name = "/" + info.name
        return None if any(name.startswith(s) for s in skip) else info

    with tarfile.open(fileobj=archive, mode="w") as tar:
        parts = prefix.strip("/").split("/")
        for depth in range(1, len(parts)):  # every user must reach it (/root is 0700)
            folder = tarfile.TarInfo("/".join(parts[:depth]))
            folder.type, folder.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(folder)
        tar.add(prefix, arcname=prefix.lstrip("/"), filter=keep)
    archive.seek(0)
    box = client.containers.create(base, command=["/bin/true"])  # never started
    try:
        if not box.put_archive("/", archive.getvalue()):
            raise EnvironmentBuildError(f"could not copy Python {version} into {base}")
        repository, _, name = tag.partition(":")
        box.commit(repository=repository, tag=name, changes=['CMD ["python3"]'])
    finally:
        box.remove(force=True)
    return tag
