"""Where a workspace's UI is served, so any process can link a run to its page.

``ferry ui`` leaves ``ui.json`` in the workspace folder (0600: the URL, its token and the
serving process) and removes it when it stops. ``run.get_portal_url()`` and the "Web View" line
of ``wait_for_completion(show_output=True)`` read it: a run's page while a UI serves the
workspace, the run's folder otherwise. A server's workspace links to the server's own pages.

Example::

    studio = serving(ws.path)        # Studio(url="http://127.0.0.1:8780", token="…") or None
    run_url(ws, run.id)              # "http://127.0.0.1:8780/runs/<id>"
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.agent.proc import pid_alive

FILE_NAME = "ui.json"


@dataclass(frozen=True)
class Studio:
    url: str
    token: str | None
    pid: int


def serving(workspace_path: Path) -> Studio | None:
    """The UI serving the workspace in this folder, if one is running (a file left by a
    process that is gone, or written by another user, is ignored)."""
    path = workspace_path / FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        if os.fstat(fh.fileno()).st_uid != os.getuid():
            return None
        try:
            data = json.loads(fh.read(64 << 10))
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    url, token, pid = data.get("url"), data.get("token"), data.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int) or not pid_alive(pid):
        return None
    return Studio(url.rstrip("/"), token if isinstance(token, str) else None, pid)


def run_url(ws: Any, run_id: str) -> str | None:
    """The run's page: on the workspace's server, or on a UI serving this folder; None
    when neither."""
    server = getattr(ws, "server", None)
    if server:
        return f"{str(server).rstrip('/')}/runs/{run_id}"
    studio = serving(Path(ws.path))
    return f"{studio.url}/runs/{run_id}" if studio else None


def announce(workspace_path: Path, url: str, token: str) -> Path:
    """Write the address file (atomically, 0600)."""
    path = workspace_path / FILE_NAME
    temp = path.with_name(f".{FILE_NAME}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, fh)
    os.replace(temp, path)
    return path


def withdraw(workspace_path: Path) -> None:
    """Remove the address file if it is this process's."""
    studio = serving(workspace_path)
    if studio is not None and studio.pid == os.getpid():
        (workspace_path / FILE_NAME).unlink(missing_ok=True)
