"""A Docker environment's image: built once per specification hash, then found in milliseconds.

The image of an environment is tagged ``ferry-env:<hash>`` (:func:`ferry.envbuild.docker_spec.
docker_hash`) and labelled with what a run needs (its Python, its lock). Finding it is one
``inspect`` request over the engine's socket (:func:`lookup_image`); building it (:func:`
ensure_image`) goes through the ``docker`` library, streaming every line to ``log``:

1. the base: ferry's default base image (:mod:`.docker_base`), a named image (pulled when the
   engine lacks it), or an image built from a Dockerfile or a build context;
2. the packages, when the environment declares any: a build container from the base runs uv
   (copied in) to make ``/opt/ferry/venv`` and install them, with this machine's pip settings
   (:mod:`.pipconfig`): index and find-links folders and constraint files are mounted read-only
   at the same paths, the CA bundle is copied in, uv's cache is a named volume of the engine, and
   the container uses the host's network; then the container is committed with the base's own
   command and entry point and ``PATH`` leading to the environment.

The tag is written last (by the commit), so a failed or interrupted build publishes nothing;
concurrent builds of one hash on this machine are one build (a file lock per hash).

Example::

    image = ensure_image(env_spec, engine_address(), log=print, lock_dir=ws.envs_dir)
    image.tag, image.python          # 'ferry-env:5f0c…', '/opt/ferry/venv/bin/python'
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferry.agent import container
from ferry.envbuild.docker_spec import (
    REFERENCE_IMAGE_PREFIX,
    VENV_IN_IMAGE,
    docker_canonical,
    docker_hash,
)

if TYPE_CHECKING:
    from ferry.envbuild.resolver import ResolvedEnvironment
    from ferry.spec import EnvironmentSpec, WorkspaceServices

Log = Callable[[str], None]
REPOSITORY = "ferry-env"
LABEL_HASH = "ferry.spec-hash"


@dataclass(frozen=True)
class DockerImage:
    """A built image: its tag and id, the interpreter inside, the lock, and whether this call
    built it."""

    tag: str
    image_id: str
    spec_hash: str
    python: str
    lock: str | None = None
    built: bool = False

    def resolved(self) -> ResolvedEnvironment:
        from ferry.envbuild.resolver import ResolvedEnvironment

        return ResolvedEnvironment(
            python=self.python, lock=self.lock, spec_hash=self.spec_hash, built=self.built
        )


def image_tag(spec_hash: str) -> str:
    return f"{REPOSITORY}:{spec_hash}"


def _from_inspect(found: dict[str, Any], digest: str) -> DockerImage:
    labels = (found.get("Config") or {}).get("Labels") or {}
    return DockerImage(
        tag=image_tag(digest),
        image_id=str(found.get("Id")),
        spec_hash=digest,
        python=str(labels.get("ferry.python") or "python"),
        lock=labels.get("ferry.lock") or None,
    )


def lookup_image(env: EnvironmentSpec, address: str) -> DockerImage | None:
    """The environment's image on the engine at ``address``, or None (one request)."""
    digest = docker_hash(env)
    try:
        found = container.inspect_image(address, image_tag(digest))
    except container.EngineError:
        return None
    return None if found is None else _from_inspect(found, digest)


def build_image(
    env: EnvironmentSpec, workspace: WorkspaceServices, log: Log | None = None
) -> DockerImage:
    """Build (or find) ``env``'s image on the engine found as Docker's clients find it."""
    from ferry.envbuild.docker_engine import check_engine, engine_address

    address = engine_address()
    check_engine(address)
    return ensure_image(env, address, log=log or (lambda _: None), lock_dir=workspace.envs_dir)


def ensure_image(env: EnvironmentSpec, address: str, *, log: Log, lock_dir: Path) -> DockerImage:
    """The environment's image, built first when the engine lacks it."""
    from ferry.envbuild.docker_prune import record_use

    found = lookup_image(env, address)
    if found is not None:
        record_use(lock_dir, found.spec_hash)
        log(f"environment {env.name!r}: reusing image {found.tag[: len(REPOSITORY) + 13]}")
        return found
    from filelock import FileLock

    from ferry.envbuild.docker_engine import client as make_client

    digest = docker_hash(env)
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(lock_dir) / f"docker-{digest}.lock")):
        found = lookup_image(env, address)
        if found is not None:
            log(f"environment {env.name!r}: reusing image {found.tag} (built meanwhile)")
            return found
        record_use(lock_dir, digest)
        started = time.monotonic()
        log(f"environment {env.name!r}: building image {image_tag(digest)}")
        client = make_client(address)
        try:
            image = _build(client, env, digest, log)
        finally:
            client.close()
        log(
            f"environment {env.name!r}: built image {image.tag} in "
            f"{time.monotonic() - started:.1f} s"
        )
        return image


def _build(client: Any, env: EnvironmentSpec, digest: str, log: Log) -> DockerImage:
    from ferry.envbuild.defaults import effective_environment
    from ferry.envbuild.docker_steps import (
        base_config,
        install_packages,
        probe_python,
        publish,
        resolve_base,
    )

    effective, notes = effective_environment(env)
    for note in notes:
        log(f"environment {env.name!r}: {note}")
    base = resolve_base(client, env.docker, log)
    config = base_config(client, base)
    labels = {
        LABEL_HASH: digest,
        "ferry.env-name": env.name,
        "ferry.spec": json.dumps(docker_canonical(env), sort_keys=True),
    }
    if effective.user_managed:
        python = effective.interpreter or probe_python(client, base, config, None, log)[0]
        labels["ferry.python"] = python
        image_id = publish(client, base, config, labels, image_tag(digest), env=None)
        return DockerImage(image_tag(digest), image_id, digest, python, None, built=True)
    base, config, lock = install_packages(client, effective, base, config, log)
    labels.update({"ferry.python": f"{VENV_IN_IMAGE}/bin/python", "ferry.lock": lock})
    image_id = publish(client, base, config, labels, image_tag(digest), env=VENV_IN_IMAGE)
    return DockerImage(
        image_tag(digest), image_id, digest, f"{VENV_IN_IMAGE}/bin/python", lock, built=True
    )


def is_reference_image(image: str | None) -> bool:
    return bool(image and image.startswith(REFERENCE_IMAGE_PREFIX))


def single_file_tar(name: str, data: bytes, mode: int = 0o644) -> bytes:
    """A tar holding one file (for ``put_archive`` and build contexts)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, 0
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
