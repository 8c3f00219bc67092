"""The steps of an image build (see :mod:`.docker_build`): base, Python, packages, publish.

Each step streams what the engine says to ``log`` and turns the engine's failures into one
:class:`~ferry.errors.EnvironmentBuildError` that names the environment, the step and the
engine's own last lines. Nothing here tags an image except :func:`publish`, the last step.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import os
import shlex
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from ferry.envbuild.docker_spec import VENV_IN_IMAGE
from ferry.errors import EnvironmentBuildError
from ferry.spec import DockerSpec, EnvironmentSpec

Log = Callable[[str], None]
UV_CACHE_VOLUME = "ferry-uv-cache"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROBE = (
    "for p in python3 python; do if command -v $p >/dev/null 2>&1; then command -v $p; "
    "exec $p -c 'import sys; print(\"%d.%d\" % sys.version_info[:2]); print(sys.base_prefix)'; "
    "fi; done; exit 3"
)


def _errors() -> Any:
    import docker

    return docker.errors


# base ------------------------------------------------------------------------------------------
def resolve_base(client: Any, docker: DockerSpec, log: Log) -> str:
    """The image the environment starts from, on the engine (pulled or built when needed)."""
    from ferry.envbuild.docker_base import ensure_default_base
    from ferry.envbuild.docker_build import is_reference_image, single_file_tar
    from ferry.envbuild.docker_context import context_archive

    if docker.build_context is not None:
        context = docker.build_context
        log(f"docker: building the base image from the context {context.location!r}")
        with context_archive(context.location, context.dockerfile, context.digest) as archive:
            return _docker_build(client, archive, context.dockerfile, log)
    if docker.base_dockerfile is not None:
        log("docker: building the base image from the environment's Dockerfile")
        data = single_file_tar("Dockerfile", docker.base_dockerfile.encode("utf-8"))
        return _docker_build(client, io.BytesIO(data), "Dockerfile", log)
    if docker.base_image is None or is_reference_image(docker.base_image):
        if docker.base_image is not None:
            log(
                f"docker: {docker.base_image} is one of the reference's base images (its "
                "registry is not used here): ferry's default base image stands in for it"
            )
        return ensure_default_base(client, log)
    image = docker.base_image
    registry = (docker.registry or "").strip().rstrip("/")
    if registry and not image.startswith(registry + "/"):
        image = f"{registry}/{image}"
    try:
        client.images.get(image)
        return image
    except _errors().ImageNotFound:
        pass
    return _pull(client, image, docker.platform, log)


def _pull(client: Any, image: str, platform: str, log: Log) -> str:
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    log(f"docker: pulling {image}")
    seen: set[str] = set()
    try:
        for chunk in client.api.pull(
            repository, tag=tag or "latest", stream=True, decode=True, platform=platform
        ):
            if "error" in chunk:
                raise _errors().APIError(str(chunk["error"]))
            status = f"{chunk.get('id', '')} {chunk.get('status', '')}".strip()
            if status and status not in seen and "progressDetail" not in chunk:
                seen.add(status)
                log(f"  {status}")
    except _errors().DockerException as exc:
        raise EnvironmentBuildError(
            f"the base image {image!r} is not on the Docker engine and could not be pulled "
            f"({_short(exc)}). Check the name; or get it onto the engine yourself (`docker pull "
            f"{image}` where a registry is reachable, `docker load`), or leave "
            "env.docker.base_image unset to use ferry's default base image"
        ) from None
    return image


def _docker_build(client: Any, archive: IO[bytes], dockerfile: str, log: Log) -> str:
    tail: collections.deque[str] = collections.deque(maxlen=30)
    image_id = None
    try:
        for chunk in client.api.build(
            fileobj=archive, custom_context=True, dockerfile=dockerfile, rm=True, forcerm=True,
            network_mode="host", decode=True, labels={"ferry.build": "base"},
        ):  # fmt: skip
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    tail.append(line)
                    log(f"  {line}")
            if "error" in chunk:
                raise EnvironmentBuildError(
                    f"the Dockerfile failed to build: {str(chunk['error']).strip()}\n"
                    + "\n".join(tail)
                )
            aux = chunk.get("aux") or {}
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except _errors().DockerException as exc:
        raise EnvironmentBuildError(f"the Dockerfile failed to build: {_short(exc)}") from None
    if image_id is None:
        raise EnvironmentBuildError("the Dockerfile built no image:\n" + "\n".join(tail))
    return image_id


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc).strip()[:500]


def base_config(client: Any, image: str) -> dict[str, Any]:
    config: dict[str, Any] = client.api.inspect_image(image).get("Config") or {}
    return config


# python ----------------------------------------------------------------------------------------
def probe_python(
    client: Any, image: str, config: dict[str, Any], request: str | None, log: Log
) -> tuple[str, str, str]:
    """The image's Python: (path, major.minor, base prefix); refused when it has none."""
    try:
        out = client.containers.run(
            image, [_PROBE], entrypoint=["/bin/sh", "-c"], remove=True, network_mode="host",
            user="0:0",
        )  # fmt: skip
    except _errors().ContainerError as exc:
        raise EnvironmentBuildError(
            f"the image {image} has no Python (neither python3 nor python is on its PATH): "
            "ferry's in-job runtime needs Python 3.8 or newer in the image; install it in the "
            "Dockerfile, or use another base image"
        ) from exc
    except _errors().DockerException as exc:
        raise EnvironmentBuildError(
            f"cannot start {image} to find its Python: {_short(exc)}"
        ) from None
    lines = out.decode("utf-8", "replace").split()
    path, version, prefix = lines[0], lines[1], lines[2]
    if tuple(int(p) for p in version.split(".")) < (3, 8):
        raise EnvironmentBuildError(
            f"the image {image} has Python {version} ({path}); ferry's in-job runtime needs "
            "3.8 or newer"
        )
    return path, version, prefix


def python_for(
    client: Any, base: str, config: dict[str, Any], request: str | None, log: Log
) -> tuple[str, str, dict[str, Any]]:
    """The interpreter the packages are installed for: the image's own, or (for ferry's default
    base image) this machine's Python of the version asked for, copied in."""
    from ferry.envbuild.docker_base import REPOSITORY, python_variant
    from ferry.envbuild.interpreters import find_python, parse_request

    path, version, _ = probe_python(client, base, config, request, log)
    if request is None:
        return base, path, config
    wanted = ".".join(map(str, parse_request(request)[:2]))
    if version == wanted:
        return base, path, config
    if not base.startswith(f"{REPOSITORY}:"):
        raise EnvironmentBuildError(
            f"the image {base} has Python {version} and the environment asks for {request}: "
            f"use an image with Python {wanted}, or remove the version from the environment "
            "(its conda file's python= or set_python_version)"
        )
    host = find_python(request)
    local_prefix = _base_prefix(host.path)
    variant = python_variant(client, base, local_prefix, wanted, log)
    return variant, f"{local_prefix}/bin/python{wanted}", base_config(client, variant)


def _base_prefix(python: str) -> str:
    import subprocess

    out = subprocess.run(
        [python, "-E", "-S", "-c", "import sys; print(sys.base_prefix)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


# packages --------------------------------------------------------------------------------------
def _requirements(env: EnvironmentSpec) -> list[str]:
    from ferry.envbuild import conda as conda_mod

    conda = [p for p in env.conda if conda_mod.conda_name(p) not in conda_mod.IGNORED]
    only = conda_mod.conda_only(conda)
    if only:
        raise EnvironmentBuildError(
            f"environment {env.name!r} needs conda-only packages ({', '.join(only)}); packages "
            "go into Docker images with uv: use pip packages, or install them in the Dockerfile"
        )
    return [*env.pip, *[r for p in conda if (r := conda_mod.conda_to_pip(p))]]


#: where this machine's package sources are mounted in a build container (outside the venv)
SOURCES_IN_BUILD = "/tmp/ferry-sources"


def _mount_sources(arguments: list[str]) -> tuple[list[str], list[str]]:
    """Folders and files of this machine that the uv arguments name (index and find-links
    folders, constraint files), and the arguments rewritten to find them where they are
    mounted (read-only, under :data:`SOURCES_IN_BUILD`)."""
    from urllib.parse import urlparse

    paths: list[str] = []
    out = list(arguments)
    for i, (flag, value) in enumerate(itertools.pairwise(arguments)):
        if flag not in ("--index-url", "--extra-index-url", "--find-links", "--constraint"):
            continue
        url = urlparse(value)
        path = url.path if url.scheme == "file" else value if not url.scheme else ""
        if not path or not os.path.exists(path):
            continue
        path = os.path.abspath(path).rstrip("/")
        mount = path
        if flag.endswith("index-url") and os.path.basename(path) == "simple":
            mount = os.path.dirname(path)  # a file index links to files beside simple/
        paths.append(mount)
        moved = SOURCES_IN_BUILD + path
        out[i + 1] = f"file://{moved}" if url.scheme == "file" else moved
    return list(dict.fromkeys(paths)), out


def _archive(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        folder = tarfile.TarInfo("ferry-build")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(f"ferry-build/{name}")
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _script(python: str, arguments: list[str], cert: bool) -> str:
    venv = VENV_IN_IMAGE
    uv = "/ferry-build/uv --color never"
    exports = "UV_CACHE_DIR=/tmp/ferry-uv-cache UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never"
    exports += " UV_NO_PROGRESS=1" + (" SSL_CERT_FILE=/ferry-build/ca.crt" if cert else "")
    return "\n".join([
        "set -eu", f"export {exports}",
        f"{uv} venv --python {shlex.quote(python)} {venv}",
        f"{uv} pip install --python {venv}/bin/python -r /ferry-build/requirements.in "
        + " ".join(shlex.quote(a) for a in arguments),
        f"{venv}/bin/python -m compileall -q -j 0 -x '[/\\\\]tests?[/\\\\]' {venv}/lib "
        "> /dev/null || true",
        f"{uv} pip freeze --python {venv}/bin/python > /opt/ferry/lock.txt",
        "rm -rf /ferry-build",
    ]) + "\n"  # fmt: skip


def install_packages(
    client: Any,
    env: EnvironmentSpec,
    base: str,
    config: dict[str, Any],
    log: Log,
    labels: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any], str]:
    """Run the packages' build container; returns it (stopped, to be committed), the base's
    configuration and the lock. The container is removed when the build fails."""
    from ferry.envbuild.builder import _uv
    from ferry.envbuild.pipconfig import describe, read_pip_settings, uv_arguments

    requirements = _requirements(env)
    base, python, config = python_for(client, base, config, env.python, log)
    settings = read_pip_settings()
    arguments = uv_arguments(settings, list(env.pip_options))
    log(f"docker: installing {len(requirements)} package(s) into the image with uv ({python})")
    log(f"docker: package sources: {describe(arguments)}")
    sources, arguments = _mount_sources(arguments)
    cert = settings.cert or os.environ.get("SSL_CERT_FILE")
    files = {
        "uv": (Path(_uv()).read_bytes(), 0o755),
        "requirements.in": ("\n".join(requirements).encode() + b"\n", 0o644),
        "build.sh": (_script(python, arguments, bool(cert)).encode(), 0o644),
    }
    if cert and os.path.isfile(cert):
        files["ca.crt"] = (Path(cert).read_bytes(), 0o644)
    from docker.types import Mount

    mounts = [Mount("/tmp/ferry-uv-cache", UV_CACHE_VOLUME, type="volume")]
    mounts += [Mount(SOURCES_IN_BUILD + p, p, type="bind", read_only=True) for p in sources]
    has_entrypoint = bool(config.get("Entrypoint"))
    box = client.containers.create(
        base,
        command=["/ferry-build/build.sh"]
        if has_entrypoint
        else ["/bin/sh", "/ferry-build/build.sh"],
        entrypoint=["/bin/sh"] if has_entrypoint else None,
        user="0:0" if config.get("User") else None,
        network_mode="host",
        mounts=mounts,
        labels={"ferry.build": "packages", **(labels or {})},
    )
    try:
        box.put_archive("/", _archive(files))
        box.start()
        tail = _stream(box.logs(stream=True, follow=True), log)
        code = int(box.wait().get("StatusCode", 1))
        if code != 0:
            raise EnvironmentBuildError(
                f"environment {env.name!r} could not be built in its image: the packages' "
                f"installation failed (exit {code}):\n" + "\n".join(tail)
            )
        lock = _read_file(box, "/opt/ferry/lock.txt")
    except BaseException:
        box.remove(force=True)
        raise
    return box, config, lock


def _stream(chunks: Iterable[bytes], log: Log) -> list[str]:
    tail: collections.deque[str] = collections.deque(maxlen=40)
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                tail.append(line)
                log(f"  {line}")
    if pending.strip():
        tail.append(pending.decode("utf-8", "replace"))
        log(f"  {tail[-1]}")
    return list(tail)


def _read_file(box: Any, path: str) -> str:
    stream, _ = box.get_archive(path)
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        return member.read().decode("utf-8", "replace") if member else ""


# publish ---------------------------------------------------------------------------------------
def publish(
    client: Any,
    source: Any,
    config: dict[str, Any],
    labels: dict[str, str],
    tag: str,
    env: str | None,
) -> str:
    """Commit ``source`` (a stopped build container, or an image to label) as ``tag``, with
    the base's command, entry point, user and folder, and ``PATH`` leading to ``env``."""
    box = source
    if isinstance(source, str):  # a container that never runs: only its configuration counts
        box = client.containers.create(source, command=["/bin/true"])
    changes = []
    if env:
        path = next((e[5:] for e in config.get("Env") or [] if e.startswith("PATH=")), None)
        changes += [f"ENV VIRTUAL_ENV={env}", f"ENV PATH={env}/bin:{path or DEFAULT_PATH}"]
    changes.append(f"CMD {json.dumps(config.get('Cmd') or ['python3'])}")
    if config.get("Entrypoint"):
        changes.append(f"ENTRYPOINT {json.dumps(config['Entrypoint'])}")
    if config.get("User"):
        changes.append(f"USER {config['User']}")
    if config.get("WorkingDir"):
        changes.append(f"WORKDIR {config['WorkingDir']}")
    repository, _, name = tag.partition(":")
    try:
        image = box.commit(
            repository=repository, tag=name, changes=changes, conf={"Labels": labels}
        )
    finally:
        box.remove(force=True)
    return str(image.id)
