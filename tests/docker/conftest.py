"""A real Docker engine for the session, and ferry's default base image made once per machine.

``docker_engine`` starts Debian's ``dockerd`` on a private socket, with its data and state in a
temporary folder and settings that leave the host's network alone (no bridge, no iptables
rules: containers use the host's network, as ferry runs them), and stops it at the end. A test
that needs it FAILS, saying how to install it, when ``dockerd`` is missing: ``make sysdeps``.

ferry's default base image is made with mmdebstrap once and kept (as its root file system
tarball) under ``~/.cache/ferry-tests/docker-base``, outside the clone: later sessions import it
in seconds. Tests that build images use specifications that repeat across the session, so each
image is built once and reused by hash.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE_CACHE = Path.home() / ".cache" / "ferry-tests" / "docker-base"
# the SSH target's real sshd (tests/targets/sshd.py) serves the Docker runs on SSH hosts
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "targets"))


@dataclass(frozen=True)
class Engine:
    """The session's engine: its address (``DOCKER_HOST``) and its folder."""

    address: str
    root: Path

    @property
    def socket(self) -> Path:
        return Path(self.address.removeprefix("unix://"))


def _start(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.fail(
            "dockerd is not installed: run `make sysdeps` (it installs Debian's docker.io and "
            "mmdebstrap), or `apt-get install docker.io mmdebstrap`"
        )
    sock = root / "docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - kept open while it runs
    proc = subprocess.Popen(
        [dockerd, f"--host=unix://{sock}", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}",
         "--iptables=false", "--ip-masq=false", "--bridge=none", "--ip6tables=false",
         "--containerd-namespace=ferry-tests", "--containerd-plugins-namespace=ferry-tests-p"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    address = f"unix://{sock}"
    from ferry.agent import container

    deadline = time.monotonic() + 60
    while True:
        try:
            container.version(address, timeout=1.0)
            return proc, address
        except container.EngineError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (root / "dockerd.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"dockerd did not start (exit {proc.poll()}):\n{tail}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    # a short folder: the socket's path must fit in 108 bytes
    root = Path(tmp_path_factory.mktemp("dk"))
    proc, address = _start(root)
    BASE_CACHE.mkdir(parents=True, exist_ok=True)
    old = {k: os.environ.get(k) for k in ("DOCKER_HOST", "FERRY_DOCKER_BASE_CACHE")}
    os.environ["DOCKER_HOST"] = address
    os.environ["FERRY_DOCKER_BASE_CACHE"] = str(BASE_CACHE)
    try:
        yield Engine(address, root)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for folder in ("exec/netns/default", "exec", "data"):  # what dockerd left mounted
            subprocess.run(["umount", "-R", str(root / folder)], capture_output=True, check=False)
        shutil.rmtree(root / "data", ignore_errors=True)
        shutil.rmtree(root / "exec", ignore_errors=True)


@pytest.fixture
def engine(docker_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The session's engine, named by DOCKER_HOST for this test (the supervisor inherits it)."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.address)
    monkeypatch.setenv("FERRY_DOCKER_BASE_CACHE", str(BASE_CACHE))
    return docker_engine
