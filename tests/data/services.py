"""Real storage services on loopback for the data tests and benchmarks, started and stopped
here: an S3-compatible server (moto's server mode, with IAM authentication on, so that wrong
credentials are refused) and the Azure Storage emulator (Azurite's blob service, from npm).

Missing a service FAILS the test with how to install it: ``make install`` brings
``moto[server]``; ``scripts/sysdeps.sh`` installs Azurite with
``npm install --prefix ~/.cache/ferry-tests/azurite azurite``.

Example::

    with s3_server() as s3:          # s3.endpoint, s3.access_key_id, s3.secret_access_key
        ...
    with azurite() as az:            # az.endpoint, az.account_name, az.account_key
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AZURITE_HOME = Path.home() / ".cache" / "ferry-tests" / "azurite"
#: Azurite's well-known development account (public, documented by Microsoft)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class ServiceUnavailable(RuntimeError):
    """A service cannot be started here; the message says how to install it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(
                f"{what} exited at once: {log.read_text(errors='replace')[-2000:]}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServiceUnavailable(f"{what} did not listen on 127.0.0.1:{port} within 60 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class S3Server:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    proc: subprocess.Popen[bytes]

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key, region_name="us-east-1",
        )  # fmt: skip

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port; requests must be signed by the IAM user this
    makes (the first three requests, which make it, are let through unsigned)."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise ServiceUnavailable(
            f"the S3 tests need moto's server ({exc}): install it with `make install` or "
            "`pip install 'moto[server]'`"
        ) from None
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="ferry-moto-")) / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3", "MOTO_CALL_RESET_API": "false"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(port, proc, "moto's S3 server", log)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=endpoint, aws_access_key_id="setup", aws_secret_access_key="setup",
            region_name="us-east-1",
        )  # fmt: skip
        iam.create_user(UserName="ferry")
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}  # fmt: skip
        iam.put_user_policy(UserName="ferry", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="ferry")["AccessKey"]
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], proc)
    finally:
        _stop(proc)
        shutil.rmtree(log.parent, ignore_errors=True)


@dataclass
class Azurite:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1
    account_name: str
    account_key: str
    proc: subprocess.Popen[bytes]


def azurite_binary() -> str:
    for candidate in (AZURITE_HOME / "node_modules" / ".bin" / "azurite-blob",):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise ServiceUnavailable(
        "the Azure Blob tests need the storage emulator Azurite (Node.js): install it with "
        f"`npm install --prefix {AZURITE_HOME} azurite` (scripts/sysdeps.sh does it; Debian: "
        "`apt-get install nodejs npm` first)"
    )


@contextlib.contextmanager
def azurite() -> Iterator[Azurite]:
    """Azurite's blob service on a free loopback port, data in a temporary folder."""
    binary = azurite_binary()
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="ferry-azurite-"))
    log = folder / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
             str(folder / "data"), "--silent", "--skipApiVersionCheck", "--disableTelemetry",
             "--loose"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(port, proc, "Azurite", log)
        yield Azurite(
            f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}", AZURITE_ACCOUNT, AZURITE_KEY, proc
        )
    finally:
        _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)
