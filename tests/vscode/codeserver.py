"""A real VS Code for the extension's end-to-end tests: code-server 4.100.3 (VS Code 1.100.3)
started on loopback with the packaged extension, driven by Debian's chromium through Playwright.

code-server is installed by ``make code-server`` (scripts/code-server.sh, cached in
``~/.cache/ferry/code-server-4.100.3``) and the extension packaged by ``make vsix``; a missing
one makes the tests fail with the command that provides it. The server runs in a process group
of its own (``setsid``) so one kill stops it, its file watcher, extension host and pty host.
Its environment reaches the extension host: ``PATH`` leads to this checkout's ``ferry``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "4.100.3"
HOME = Path(
    os.environ.get("FERRY_CODE_SERVER_HOME")
    or Path.home() / ".cache" / "ferry" / f"code-server-{VERSION}"
)
ENTRY = HOME / "node_modules" / "code-server" / "out" / "node" / "entry.js"
CHROMIUM = Path("/usr/bin/chromium")


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version = "([^"]+)"', text, re.M)
    assert found, "pyproject.toml has no version line"
    return found.group(1)


def vsix_path() -> Path:
    return ROOT / "dist" / f"ferry-vscode-{project_version()}.vsix"


def require_tools() -> None:
    """Fail (never skip) with the command that provides what is missing."""
    missing = []
    if not ENTRY.is_file():
        missing.append(f"code-server {VERSION} at {HOME} (run `make code-server`)")
    if not vsix_path().is_file():
        missing.append(f"the packaged extension {vsix_path()} (run `make vsix`)")
    if not CHROMIUM.exists():
        missing.append("Debian's chromium (run scripts/sysdeps.sh as root)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install 'playwright>=1.40')")
    assert not missing, "the VS Code end-to-end tests need: " + "; ".join(missing)


@dataclass
class CodeServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    scratch: Path, env: dict[str, str], settings: dict[str, object], timeout: float = 60.0
) -> CodeServer:
    """Install the extension into a fresh profile under ``scratch`` and start code-server
    (``settings`` go into the profile's settings.json)."""
    data, extensions, xdg = scratch / "user-data", scratch / "extensions", scratch / "xdg"
    (data / "User").mkdir(parents=True, exist_ok=True)
    (data / "User" / "settings.json").write_text(
        json.dumps(
            {
                "security.workspace.trust.enabled": False,
                "workbench.startupEditor": "none",
                "extensions.autoUpdate": False,
                "extensions.autoCheckUpdates": False,
                "telemetry.telemetryLevel": "off",
                "workbench.tips.enabled": False,
                "window.commandCenter": False,
                "chat.commandCenter.enabled": False,
                "workbench.enableExperiments": False,
                **settings,
            }
        ),
        encoding="utf-8",
    )
    full_env = {
        **os.environ,
        **env,
        "XDG_CONFIG_HOME": str(xdg / "config"),
        "XDG_DATA_HOME": str(xdg / "data"),
        "XDG_CACHE_HOME": str(xdg / "cache"),
    }
    base = ["node", str(ENTRY), "--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    installed = subprocess.run(
        [*base, "--install-extension", str(vsix_path())],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    port = _free_port()
    log = scratch / "code-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "setsid",
                *base,
                "--bind-addr",
                f"127.0.0.1:{port}",
                "--auth",
                "none",
                "--disable-telemetry",
                "--disable-update-check",
            ],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = CodeServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"code-server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise AssertionError(f"code-server did not answer in {timeout} s; its log: {log}")


def ferry_command() -> Path:
    """This checkout's ferry (the setting ferry.path points the extension at it: the extension
    host takes PATH from the user's login shell, not from code-server's environment)."""
    return Path(sys.executable).parent / "ferry"


def ferry_env(workspace_home: Path) -> dict[str, str]:
    """FERRY_HOME kept in the test's scratch folder."""
    return {"FERRY_HOME": str(workspace_home)}
