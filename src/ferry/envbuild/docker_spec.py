"""Docker environments as data: the reference's Docker section checked, merged with the run's
``DockerConfiguration``, and hashed (pure: no engine, no files).

The reference keeps Docker in two places. The environment's section names the *image*
(``base_image``, ``base_dockerfile`` or ``build_context``, exclusive; ``base_image_registry``;
``platform``) and, deprecated there, how to *run* it (``enabled``, ``shm_size``, ``arguments``,
``shared_volumes``); the run configuration's ``DockerConfiguration`` (``use_docker``,
``shm_size``, ``arguments``, ``shared_volumes``) is where the run-time settings moved. Here, as
in the reference, a run uses Docker when either asks for it, and the run configuration's
settings win over the environment's deprecated ones (a note says so when both set them).

An image is identified by :func:`docker_canonical`: the base (an image name, a Dockerfile's
text, a build context's digest, or ferry's default base image), the platform, the Python asked
for and the packages installed into the image, and the build recipe. Run-time settings are not
part of it.

Example::

    spec = docker_section({"enabled": True, "baseImage": "python:3.11-slim"}, "env.docker")
    env, notes = merge_run_docker(EnvironmentSpec(docker=spec), {"useDocker": False})
    docker_hash(env)          # 32 hex digits, the tag of the image: ferry-env:<hash>
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.spec import BuildContextSpec, DockerSpec

if TYPE_CHECKING:
    from ferry.spec import EnvironmentSpec

#: bump whenever ferry changes how it builds an image (what goes in, or how)
DOCKER_RECIPE = "docker-uv-1"
#: where the packages of a Docker environment go inside its image
VENV_IN_IMAGE = "/opt/ferry/venv"
#: the reference's own base images (Microsoft's registry): ferry's default base image stands in
REFERENCE_IMAGE_PREFIX = "mcr.microsoft.com/azureml/"
_SHM = re.compile(r"^\d+(\.\d+)?[bkmgBKMG]?$")
_RUN_DEFAULTS = {"shmSize": "2g", "arguments": [], "sharedVolumes": True}


def _text(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {type(value).__name__}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, like ['--ulimit', 'nofile=1024']")
    return tuple(value)


def check_shm_size(value: Any, where: str) -> str:
    """Docker's size format: a number with an optional unit (b, k, m, g), like ``2g``."""
    text = "2g" if value is None else str(value).strip()
    if not _SHM.match(text):
        raise ConfigError(
            f"{where} {value!r} is not a size Docker understands; write a number with a unit "
            "b, k, m or g, like '2g' or '512m'"
        )
    return text


def _platform(value: Any, where: str) -> str:
    if value is None:
        return "linux/amd64"
    if isinstance(value, str):
        os_name, _, arch = value.partition("/")
    elif isinstance(value, Mapping):
        os_name, arch = str(value.get("os") or "Linux"), str(value.get("architecture") or "amd64")
    else:
        raise ConfigError(f"{where} must be {{'os': 'Linux', 'architecture': 'amd64'}}")
    if os_name.lower() != "linux":
        raise ConfigError(f"{where}: only Linux images run here, not {os_name!r}")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch.lower(), arch.lower() or "amd64")
    return f"linux/{arch}"


def _build_context(value: Any, where: str) -> BuildContextSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping with a location and a dockerfilePath")
    location = _text(value.get("location"), f"{where}.location")
    if location is None:
        raise ConfigError(f"{where}.location names no folder")
    dockerfile = _text(value.get("dockerfilePath"), f"{where}.dockerfilePath") or "Dockerfile"
    parts = dockerfile.replace("\\", "/").split("/")
    if dockerfile.startswith("/") or ".." in parts:
        raise ConfigError(
            f"{where}.dockerfilePath {dockerfile!r} is outside the build context {location!r}; "
            "give a path inside it, like 'Dockerfile' or 'docker/Dockerfile'"
        )
    digest = _text(value.get("digest"), f"{where}.digest") or ""
    return BuildContextSpec(location=location, dockerfile="/".join(parts), digest=digest)


def docker_section(data: Mapping[str, Any], where: str) -> DockerSpec:
    """Check the reference's Docker section (camelCase) and return its spec."""
    registry = data.get("baseImageRegistry") or {}
    if not isinstance(registry, Mapping):
        raise ConfigError(f"{where}.baseImageRegistry must be a mapping (address, username)")
    spec = DockerSpec(
        enabled=bool(data.get("enabled", False)),
        base_image=_text(data.get("baseImage"), f"{where}.baseImage"),
        base_dockerfile=_text(data.get("baseDockerfile"), f"{where}.baseDockerfile"),
        arguments=_strings(data.get("arguments"), f"{where}.arguments"),
        build_context=_build_context(data.get("buildContext"), f"{where}.buildContext"),
        registry=_text(registry.get("address"), f"{where}.baseImageRegistry.address"),
        registry_user=_text(registry.get("username"), f"{where}.baseImageRegistry.username"),
        platform=_platform(data.get("platform"), f"{where}.platform"),
        shm_size=check_shm_size(data.get("shmSize"), f"{where}.shmSize"),
        shared_volumes=bool(data.get("sharedVolumes", True)),
    )
    named = [n for n, v in (("base_image", spec.base_image),
                            ("base_dockerfile", spec.base_dockerfile),
                            ("build_context", spec.build_context)) if v]  # fmt: skip
    if len(named) > 1:
        raise ConfigError(
            f"{where}: {' and '.join(named)} are both set; they are exclusive (give one: an "
            "image, a Dockerfile or a build context)"
        )
    return spec


def merge_run_docker(
    env: EnvironmentSpec, run_docker: Mapping[str, Any]
) -> tuple[EnvironmentSpec, list[str]]:
    """The environment's Docker request merged with the run's ``DockerConfiguration``
    (``run_docker``, camelCase), and the notes to show at submit and in the run's log."""
    docker = env.docker
    use = bool(run_docker.get("useDocker", False))
    if not (use or docker.enabled):
        return replace(env, docker=replace(docker, enabled=False, by_habit=False)), []
    notes: list[str] = []
    if use:  # DockerConfiguration's run-time settings win over the environment's deprecated ones
        given: dict[str, Any] = {
            "shmSize": check_shm_size(run_docker.get("shmSize"), "docker.shm_size"),
            "arguments": list(_strings(run_docker.get("arguments"), "docker.arguments")),
            "sharedVolumes": bool(run_docker.get("sharedVolumes", True)),
        }
        mine: dict[str, Any] = {
            "shmSize": docker.shm_size,
            "arguments": list(docker.arguments),
            "sharedVolumes": docker.shared_volumes,
        }
        lost = [k for k, v in mine.items() if v != _RUN_DEFAULTS[k] and v != given[k]]
        if lost:
            notes.append(
                f"environment.docker.{', '.join(lost)} (deprecated there) differ from the run's "
                "DockerConfiguration, whose settings are used"
            )
        docker = replace(
            docker,
            shm_size=given["shmSize"],
            arguments=tuple(given["arguments"]),
            shared_volumes=given["sharedVolumes"],
        )
    if docker.explicit:
        return replace(env, docker=replace(docker, enabled=True, by_habit=False)), notes
    notes.append(
        "Docker is asked for without a base image, Dockerfile or build context: the local and "
        "ssh targets run the job in ferry's default base image when a Docker engine answers; "
        "without one, and on targets without containers (ray, spark), it runs in a plain "
        "environment"
    )
    return replace(env, docker=replace(docker, enabled=False, by_habit=True)), notes


def base_of(docker: DockerSpec) -> dict[str, Any]:
    """What the image starts from, in canonical form (the Dockerfile by its text)."""
    import hashlib

    if docker.build_context is not None:
        context = docker.build_context
        return {"context": context.digest, "dockerfile": context.dockerfile}
    if docker.base_dockerfile is not None:
        return {"dockerfile": hashlib.sha256(docker.base_dockerfile.encode()).hexdigest()}
    image = docker.base_image
    if image is None or image.startswith(REFERENCE_IMAGE_PREFIX):
        from ferry.envbuild.docker_base import base_tag

        return {"default": base_tag()}  # a new default base means new images on it
    registry = (docker.registry or "").strip().rstrip("/")
    if registry and not image.startswith(registry + "/"):
        image = f"{registry}/{image}"
    return {"image": image}


def docker_canonical(env: EnvironmentSpec) -> dict[str, Any]:
    """The parts of a Docker environment that decide its image, in one canonical form."""
    from ferry.envbuild.defaults import effective_environment
    from ferry.envbuild.spechash import canonical_spec

    effective = effective_environment(env)[0]
    spec: dict[str, Any] = {
        "format": 1,
        "kind": "docker",
        "recipe": DOCKER_RECIPE,
        "base": base_of(env.docker),
        "platform": env.docker.platform,
    }
    if effective.user_managed:
        spec["interpreter"] = effective.interpreter  # None: the image's own Python
    else:
        packages = canonical_spec(
            effective, default_python="image", platform=env.docker.platform, recipe=DOCKER_RECIPE
        )
        spec.update({k: packages[k] for k in ("python", "pip", "pipOptions")})
        if "conda" in packages:
            spec["conda"] = packages["conda"]
    return spec


def docker_hash(env: EnvironmentSpec) -> str:
    """32 hex digits identifying the image of ``env`` (its tag: ``ferry-env:<hash>``)."""
    from ferry.envbuild.spechash import spec_hash

    return spec_hash(docker_canonical(env))
