"""A submitted run is never lost: drivers that exit at once, closed terminals, many submitters at
once, readers opening the database meanwhile — with real detached supervisors and real jobs."""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import sqlite3
import stat
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from ferry import Run, Workspace
from ferry.tracking import RunQuery

FERRY = str(Path(sys.executable).with_name("ferry"))
TRAIN = """\
import os, sys, time
from ferry import Run
run = Run.get_context()
for i in range(30):
    run.log("m", i)
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("weights")
print("seen FERRY_SSH_PASSWORD:", "FERRY_SSH_PASSWORD" in os.environ)
time.sleep(float(os.environ.get("TRAIN_SECONDS", "0.2")))
"""
DRIVER = """\
import sys
from ferry import Experiment, ScriptRunConfig, Workspace
ws = Workspace.from_config()
exp = Experiment(ws, sys.argv[2])
print(" ".join(exp.submit(ScriptRunConfig(sys.argv[1], "train.py")).id
               for _ in range(int(sys.argv[3]))), flush=True)
"""


@pytest.fixture
def source(awkward_dir: Path) -> Path:
    src = awkward_dir / "src"
    src.mkdir()
    (src / "train.py").write_text(TRAIN)
    return src


@pytest.fixture(params=["zygote", "spawn"])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "spawn":
        monkeypatch.setenv("FERRY_SUPERVISOR_SPAWN", "1")
    else:
        monkeypatch.delenv("FERRY_SUPERVISOR_SPAWN", raising=False)
        monkeypatch.delenv("FERRY_NO_DAEMON", raising=False)
    return str(request.param)


def _driver(source: Path, experiment: str, count: int, **kwargs: object) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(source), experiment, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        **kwargs,  # type: ignore[call-overload]
    )
    return out.stdout.split()


def _settled(ws: Workspace, run_ids: list[str], seconds: float = 120.0) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        statuses = {rid: Run.get(ws, rid).get_status() for rid in run_ids}
        if all(s in ("Completed", "Failed", "Canceled") for s in statuses.values()):
            return statuses
        assert time.monotonic() < deadline, statuses
        time.sleep(0.1)


def _why(ws: Workspace, run_id: str) -> str:
    """A failed run's error and the tail of its supervisor's log, for the assertion message."""
    run = Run.get(ws, run_id)
    log = run.run_dir / "supervisor.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no supervisor.log)"
    return f"{run.get_details().get('error')}\n{tail}"


def _assert_complete(ws: Workspace, run_ids: list[str]) -> None:
    statuses = _settled(ws, run_ids)
    failed = {rid: _why(ws, rid) for rid, status in statuses.items() if status != "Completed"}
    assert not failed, failed
    for rid in run_ids:
        run = Run.get(ws, rid)
        assert run.get_metrics()["m"] == list(range(30)), rid
        assert "outputs/model.txt" in run.get_file_names(), rid


def test_a_driver_that_exits_at_once_loses_nothing(
    start_method: str, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRY_SSH_PASSWORD", "hunter2")
    run_ids = _driver(source, "exits", 5)
    assert len(run_ids) == 5
    ws = Workspace.from_config()
    _assert_complete(ws, run_ids)
    log = (ws.runs_dir / run_ids[0] / "user_logs" / "std_log.txt").read_text()
    assert "seen FERRY_SSH_PASSWORD: False" in log  # ferry's secrets stay ferry's


def test_a_closed_terminal_does_not_end_the_runs(source: Path) -> None:
    """Each submitter is a session leader on a terminal that goes away (a closed window)."""

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = {**os.environ, "TRAIN_SECONDS": "2"}
    terminals = []
    for argv in (
        [sys.executable, "-c", DRIVER, str(source), "tty-api", "2"],
        [FERRY, "submit", str(source / "train.py"), "-e", "tty-cli", "--no-wait"],
    ):
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=take_terminal,
            env=env,
        )
        os.close(slave)
        terminals.append((proc, master))
    for proc, master in terminals:
        deadline = time.monotonic() + 60
        while proc.poll() is None:  # keep the terminal drained while the submitter runs
            assert time.monotonic() < deadline
            try:
                os.read(master, 65536)
            except OSError:
                time.sleep(0.02)
        assert proc.returncode == 0
        os.close(master)  # hang up: SIGHUP to whatever is left of that session
    ws = Workspace.from_config()
    deadline = time.monotonic() + 30
    while len(ws.store.list_runs(RunQuery())) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _assert_complete(ws, [r.id for r in ws.store.list_runs(RunQuery())])


def test_many_submitters_and_readers_at_once(source: Path) -> None:
    """8 API drivers (2 runs each) and 8 CLI submits at once, while another process keeps
    opening and closing the database read-write: every run recorded and Completed."""
    ws = Workspace.from_config()
    db = ws.path / "ferry.db"
    _ = ws.store.list_experiments()  # the database exists before the reader starts
    stop = threading.Event()
    reader_errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                conn = sqlite3.connect(db, timeout=60)
                conn.execute("select count(*) from runs").fetchone()
                conn.close()
            except sqlite3.Error as exc:
                reader_errors.append(str(exc))
            time.sleep(0.01)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        api = [
            subprocess.Popen(
                [sys.executable, "-c", DRIVER, str(source), "load-api", "2"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        cli = [
            subprocess.Popen(
                [FERRY, "submit", str(source / "train.py"), "-e", "load-cli", "--no-wait"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        ids: list[str] = []
        for proc in api:
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0
            ids += out.split()
        for proc in cli:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            assert "locked" not in err
        recorded = [r.id for r in ws.store.list_runs(RunQuery())]
        assert len(recorded) == 24 and set(ids) <= set(recorded)
        _assert_complete(ws, recorded)
    finally:
        stop.set()
        thread.join()
    assert reader_errors == []


def test_the_run_holds_none_of_the_drivers_locks_or_sockets(
    start_method: str, source: Path, awkward_dir: Path
) -> None:
    lock_file = awkward_dir / "driver.lock"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    driver = f"""
import fcntl, socket, sys
from ferry import Experiment, ScriptRunConfig, Workspace
lock = open({str(lock_file)!r}, "w"); fcntl.flock(lock, fcntl.LOCK_EX)
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", {port})); server.listen()
run = Experiment(Workspace.from_config(), "holds").submit(ScriptRunConfig({str(source)!r}, "train.py"))
print(run.id)
"""
    env = {**os.environ, "TRAIN_SECONDS": "30"}
    run_id = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, env=env, timeout=60
    ).stdout.strip()
    ws = Workspace.from_config()
    run = Run.get(ws, run_id)
    deadline = time.monotonic() + 30
    while run.get_status() != "Running":
        assert time.monotonic() < deadline, run.get_status()
        time.sleep(0.05)
    try:
        with open(lock_file, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the run still held it
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))  # raises if the run still listened on it
        supervisor = run.record.supervisor_pid
        assert supervisor is not None
        for fd in os.listdir(f"/proc/{supervisor}/fd"):
            target = os.readlink(f"/proc/{supervisor}/fd/{fd}")
            assert ("driver.lock" not in target and "ferry.db" not in target) or int(fd) > 2
    finally:
        run.cancel()
        _settled(ws, [run_id])


def test_the_workspace_is_private(source: Path) -> None:
    old = os.umask(0o022)
    try:
        run_ids = _driver(source, "private", 1)
    finally:
        os.umask(old)
    ws = Workspace.from_config()
    _assert_complete(ws, run_ids)
    loose = []
    for folder, dirs, files in os.walk(ws.path):
        for name in dirs + files:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                loose.append(f"{oct(mode & 0o777)} {path.relative_to(ws.path)}")
    assert oct(ws.path.stat().st_mode & 0o777) == "0o700"
    assert loose == []
