"""Helpers of the server's tests: the ferry CLI in a fresh interpreter, a `ferry server`
process, free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

#: the heartbeat interval of the server's supervisors and of the tests' readers
HEARTBEAT = "1"


def ferry_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the ferry command line in a fresh interpreter (no warm zygote)."""
    full = dict(os.environ if env is None else env)
    full["FERRY_NO_DAEMON"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        env=full,
        input=stdin,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ferry {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A `ferry server` process and what the tests need to talk to it."""

    url: str
    database_url: str
    data_dir: Path
    blob_dir: Path
    admin_token: str
    user_token: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str, *, admin: bool = False, **kwargs: Any) -> str:
        """A token of ``user`` (created with the CLI, as an operator would)."""
        if user not in self.tokens:
            known = ferry_cli("server", "user", "list", "--json", env=self.env).stdout
            if user not in {u["name"] for u in json.loads(known)}:
                ferry_cli(
                    "server", "user", "add", user, *(["--admin"] if admin else []), env=self.env
                )
            out = ferry_cli("server", "token", "create", user, "--json", env=self.env).stdout
            self.tokens[user] = json.loads(out)["token"]
        return self.tokens[user]

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token or self.user_token}",
            **kwargs.pop("headers", {}),
        }
        return httpx.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def post(
        self, path: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.user_token}"}
        return httpx.post(self.url + path, json=body, headers=headers, timeout=30, **kwargs)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_server(
    database_url: str,
    folder: Path,
    *,
    port: int | None = None,
    supervisors: int = 2,
    extra: tuple[str, ...] = (),
    wait: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start `ferry server` and wait until it answers (a 401 to a request without a token)."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / f"server-{port}.log"
    folder.mkdir(parents=True, exist_ok=True)
    full = dict(os.environ if env is None else env)
    full.update({"FERRY_NO_DAEMON": "1", "FERRY_HEARTBEAT_SECONDS": HEARTBEAT})
    full.pop("FERRY_DATABASE_URL", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ferry.cli.main import main; main()",
                "server",
                "--database-url",
                database_url,
                "--blob-store",
                str(folder / "blobs"),
                "--data-dir",
                str(folder / "data"),
                "--port",
                str(port),
                "--supervisors",
                str(supervisors),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full,
            start_new_session=True,
        )
    if wait:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/api/v1/info", timeout=2).status_code == 401:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"ferry server did not start:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.05)
    return proc, url, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
