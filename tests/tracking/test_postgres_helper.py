"""The throw-away PostgreSQL server of the tests: a clear failure without it, nothing left over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ferry.testing.postgres import PostgresUnavailable, find_bin_dir, remove_abandoned


def test_missing_postgresql_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PG_BIN", raising=False)
    with pytest.raises(PostgresUnavailable, match=r"apt-get install postgresql.*make test"):
        find_bin_dir(str(tmp_path / "no-postgresql" / "*" / "bin"))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_server_whose_test_process_died_is_removed_by_the_next_session() -> None:
    script = (
        "import sys\n"
        "from ferry.testing.postgres import postgres_cluster\n"
        "with postgres_cluster() as c:\n"
        "    print(c.folder, c.port, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    folder_text, port_text = proc.stdout.readline().split()
    folder, port = Path(folder_text), int(port_text)
    assert _port_open(port) and (folder / "data" / "postmaster.pid").exists()
    if os.geteuid() == 0:  # initdb refuses root: the server runs as the postgres user
        assert (folder / "data").stat().st_uid != 0
    proc.send_signal(signal.SIGKILL)  # no clean-up: the server outlives its test process
    proc.wait(30)
    assert _port_open(port)
    remove_abandoned(find_bin_dir())
    assert not folder.exists()
    deadline = time.monotonic() + 30
    while _port_open(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_open(port)
