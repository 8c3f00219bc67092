"""The Docker engine a run uses: found as Docker's clients find it, checked before a run exists.

``DOCKER_HOST`` names it, else the default socket ``/var/run/docker.sock``. A Docker run is
refused at submit when no engine answers there, or when Docker's client (``docker``, which runs
each container in the foreground under the job's watchdog) is missing, with the way to start
one. The check is one ``/_ping`` request over the socket (under a millisecond), so it costs a
submit nothing; builds, pulls and clean-ups go through the ``docker`` library
(:func:`client`).

Example::

    address = engine_address()             # "unix:///var/run/docker.sock"
    check_engine(address)                  # raises DockerUnavailable with how to start one
    client(address).images.list()
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

from ferry.agent import container
from ferry.errors import EnvironmentBuildError, TargetUnavailable

START_HINT = (
    "start an engine with `sudo systemctl start docker` (or run `sudo dockerd &`; Debian and Ubuntu "
    "install it with `apt-get install docker.io`), or point DOCKER_HOST at a running engine "
    "(e.g. DOCKER_HOST=unix:///run/user/1000/docker.sock for rootless Docker); or run it "
    "without a container: env.docker.enabled = False"
)


class DockerUnavailable(TargetUnavailable):
    """No Docker engine answers where Docker's clients look for one (start one, then retry)."""


def engine_address(environ: Mapping[str, str] | None = None) -> str:
    """``DOCKER_HOST``, else the default socket (as Docker's own clients)."""
    return container.engine_address(os.environ if environ is None else environ)


def _where(address: str, environ: Mapping[str, str]) -> str:
    how = (
        "from DOCKER_HOST"
        if environ.get("DOCKER_HOST")
        else "the default socket; DOCKER_HOST is unset"
    )
    return f"{address} ({how})"


def check_engine(
    address: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    run_id: str | None = None,
    target: str | None = None,
) -> None:
    """:class:`DockerUnavailable` saying how to start an engine when none answers, or when
    Docker's client is not installed."""
    environ = os.environ if environ is None else environ
    address = address or engine_address(environ)
    try:
        container.ping(address, timeout=3.0)
    except container.EngineError as exc:
        raise DockerUnavailable(
            f"Docker is asked for, and no Docker engine answers at {_where(address, environ)}: "
            f"{exc}. To run it, {START_HINT}",
            run_id=run_id,
            target=target,
        ) from None
    if shutil.which("docker", path=environ.get("PATH")) is None:
        raise DockerUnavailable(
            f"the Docker engine at {address} answers, but Docker's client `docker` is not on "
            "PATH (ferry runs each container with it); install it (Debian and Ubuntu: "
            "`apt-get install docker.io`, which brings both)",
            run_id=run_id,
            target=target,
        )


def client(address: str | None = None, timeout: int = 600) -> Any:
    """A ``docker.DockerClient`` for the engine (the library is imported here, when needed)."""
    try:
        import docker
    except ImportError as exc:
        raise EnvironmentBuildError(
            "Docker environments need the `docker` library: pip install 'docker>=7'"
        ) from exc
    address = address or engine_address()
    try:
        return docker.DockerClient(base_url=address, timeout=timeout)
    except docker.errors.DockerException as exc:
        raise EnvironmentBuildError(
            f"cannot talk to the Docker engine at {address}: {exc}. {START_HINT}"
        ) from exc
