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
import logging
import re
import tarfile
import threading
import time
import uuid
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
from ferry.errors import BuildCancelled

if TYPE_CHECKING:
    from ferry.envbuild.resolver import ResolvedEnvironment
    from ferry.spec import EnvironmentSpec, WorkspaceServices

Log = Callable[[str], None]
REPOSITORY = "ferry-env"
LABEL_HASH = "ferry.spec-hash"
LABEL_BUILD = "ferry.build-id"  # on a build's own containers, so a cancel finds them
_RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})\b")


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


def ensure_image(
    env: EnvironmentSpec,
    address: str,
    *,
    log: Log,
    lock_dir: Path,
    cancelled: Callable[[], bool] | None = None,
) -> DockerImage:
    """The environment's image, built first when the engine lacks it. When ``cancelled()``
    turns true during the build, the build is stopped (its containers killed, the engine's
    build stream closed) and :class:`BuildCancelled` raised; nothing is published."""
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
        build_id = uuid.uuid4().hex
        watch = _CancelWatch(address, build_id, cancelled) if cancelled is not None else None
        try:
            image = _build(client, env, digest, log, {LABEL_BUILD: build_id}, watch)
        except BaseException as exc:
            if watch is not None and watch.fired:
                raise BuildCancelled(
                    f"environment {env.name!r}: the build of image {image_tag(digest)} was "
                    "stopped: the run was canceled"
                ) from exc
            raise
        finally:
            if watch is not None:
                watch.stop()
            client.close()
        log(
            f"environment {env.name!r}: built image {image.tag} in "
            f"{time.monotonic() - started:.1f} s"
        )
        return image


class _CancelWatch:
    """Stops a build when its run is canceled: every 0.25 s asks ``cancelled()``; once true,
    kills the build's containers (its own by their label, a Dockerfile's steps by the ids its
    output names) until the build gives up."""

    def __init__(self, address: str, build_id: str, cancelled: Callable[[], bool]) -> None:
        self.address, self.build_id, self.cancelled = address, build_id, cancelled
        self.fired = False
        self.steps: set[str] = set()  # containers a Dockerfile's RUN steps started
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ferry-build-cancel", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.25):
            if not self.fired:
                try:
                    self.fired = bool(self.cancelled())
                except Exception:  # a context that cannot answer: go on building
                    logging.getLogger("ferry.docker").warning("cancel check failed", exc_info=True)
                    continue
            if self.fired:  # until the build gives up: a step may start a container after
                try:
                    self._stop_build()
                except Exception:  # an engine that went away: the build fails on its own
                    logging.getLogger("ferry.docker").warning("stopping a build", exc_info=True)

    def _stop_build(self) -> None:
        from ferry.envbuild.docker_engine import client as make_client

        killer = make_client(self.address)
        try:
            boxes = killer.containers.list(filters={"label": f"{LABEL_BUILD}={self.build_id}"})
            for box in [*boxes, *(killer.containers.get(i) for i in list(self.steps))]:
                try:
                    box.kill()
                except Exception:  # it ended meanwhile
                    pass
            self.steps.clear()
        finally:
            killer.close()

    def log(self, log: Log) -> Log:
        """``log``, noting the containers a Dockerfile build's steps run in (its own output
        names them: " ---> Running in 3f2a…"), so that a cancel can kill them."""

        def noting(line: str) -> None:
            found = _RUNNING_IN.search(line)
            if found:
                self.steps.add(found.group(1))
            log(line)

        return noting

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def _build(
    client: Any,
    env: EnvironmentSpec,
    digest: str,
    log: Log,
    build_labels: dict[str, str],
    watch: _CancelWatch | None,
) -> DockerImage:
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
    if watch is not None:
        log = watch.log(log)
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
    base, config, lock = install_packages(client, effective, base, config, log, build_labels)
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
