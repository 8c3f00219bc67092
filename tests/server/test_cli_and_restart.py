"""The CLI against a server's workspace, and runs that survive their submitter and a server
restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from server_helpers import free_port, start_server, stop

from ferry.agent.proc import pid_alive
from ferry.status import RunStatus
from ferry.testing.conformance import wait_until
from ferry.tracking import RunRecord
from ferry.tracking.accounts import ServerStore


def _cli(
    cwd: Path, *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", *args],
        cwd=cwd,
        env={**env, "FERRY_NO_DAEMON": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ferry {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


def test_login_then_submit_list_show_logs_and_metrics(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = tmp_path / "project ü"
    project.mkdir()
    env = {**os.environ, "FERRY_HOME": str(tmp_path / "home")}
    env.pop("FERRY_TOKEN", None)
    login = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", "login", live.url],
        cwd=project,
        env={**env, "FERRY_NO_DAEMON": "1"},
        input=live.user_token + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    assert f"logged in to {live.url} as ada" in login.stdout
    assert json.loads((project / ".ferry" / "config.json").read_text()) == {"server": live.url}
    credentials = tmp_path / "home" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert live.user_token not in login.stdout + login.stderr
    (project / "train.py").write_text(
        "from ferry import Run\nrun = Run.get_context()\nrun.log('acc', 0.75)\nprint('trained')\n"
    )
    submitted = _cli(project, "submit", "train.py", "-e", "cli-remote", "--no-wait", env=env)
    run_id = (
        submitted.stdout.split()[-1]
        if "cli-remote_" not in submitted.stdout
        else next(w for w in submitted.stdout.split() if w.startswith("cli-remote_"))
    )
    followed = _cli(project, "runs", "logs", "-f", run_id, env=env)
    assert "trained" in followed.stdout
    listed = json.loads(_cli(project, "runs", "list", "--json", "-e", "cli-remote", env=env).stdout)
    assert run_id in json.dumps(listed)
    shown = json.loads(_cli(project, "runs", "show", run_id, "--json", env=env).stdout)
    assert shown["status"] == "Completed"
    metrics = json.loads(_cli(project, "runs", "metrics", run_id, "--json", env=env).stdout)
    assert metrics == {"acc": 0.75}
    # the snapshot went into the server's blob store
    assert any(live.blob_dir.rglob("*")), "no blob reached the server"


def _runs_until_flag(project: Path, flag: Path) -> None:
    (project / "wait.py").write_text(
        "import os, time\n"
        "print('started', flush=True)\n"
        f"while not os.path.exists({str(flag)!r}):\n"
        "    time.sleep(0.05)\n"
        "print('released', flush=True)\n"
    )


def test_a_run_outlives_its_submitter_and_a_server_restart(pg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database = pg.create_database()
    store = ServerStore(database)
    store.add_user("ada")
    token = store.create_token("ada")
    port = free_port()
    env = {**os.environ, "FERRY_HOME": str(tmp_path / "home"), "FERRY_TOKEN": token}
    env.pop("FERRY_DATABASE_URL", None)
    proc, url, log = start_server(database, tmp_path / "server", port=port, env=env)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".ferry").mkdir()
    (project / ".ferry" / "config.json").write_text(json.dumps({"server": url}))
    flag = tmp_path / "release"
    _runs_until_flag(project, flag)
    out = _cli(project, "submit", "wait.py", "-e", "restart", "--no-wait", env=env).stdout
    run_id = next(w for w in out.split() if w.startswith("restart_"))
    wait_until(lambda: store.get_run(run_id).status.value == "Running", 60, "the run to start")
    supervisor = store.get_run(run_id).supervisor_pid
    assert supervisor and pid_alive(supervisor)
    # the server goes away mid-run (its supervisors are their own processes)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # a run waiting in the queue, claimed by the process that just died
    store.create_run(
        RunRecord(
            id="restart_2_aaaaaaaa",
            experiment="restart",
            run_dir="x",
            status=RunStatus.QUEUED,
            heartbeat_at=time.time(),
            definition=store.get_run(run_id).definition,
            snapshot=store.get_run(run_id).snapshot,
        )
    )
    store.request_dispatch("restart_2_aaaaaaaa", "ada")
    store.claim_dispatch(f"{socket.gethostname()}:{proc.pid}", 1)
    proc2, _url, _log = start_server(database, tmp_path / "server", port=port, env=env)
    try:
        assert store.get_run(run_id).status.value == "Running"  # picked up, not stuck or failed
        flag.write_text("go")
        followed = _cli(project, "runs", "logs", "-f", run_id, env=env)  # a new client follows
        assert "started" in followed.stdout and "released" in followed.stdout
        assert store.get_run(run_id).status.value == "Completed"
        wait_until(
            lambda: store.get_run("restart_2_aaaaaaaa").status.is_terminal(), 90, "the orphan"
        )
        assert store.get_run("restart_2_aaaaaaaa").status.value == "Completed"
    finally:
        stop(proc2)
        store.close()
    assert log.exists()


def test_a_run_whose_supervisor_dies_is_failed_by_the_server_with_the_reason(
    live,
    remote_ws,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from ferry import Experiment, ScriptRunConfig

    src = tmp_path / "src"
    src.mkdir()
    _runs_until_flag(src, tmp_path / "never")
    run = Experiment(remote_ws, "dies").submit(ScriptRunConfig(str(src), "wait.py"))
    store = ServerStore(live.database_url)
    try:
        wait_until(lambda: store.get_run(run.id).status.value == "Running", 60, "running")
        os.kill(store.get_run(run.id).supervisor_pid or 0, signal.SIGKILL)
        # nobody reads the run: the server's own sweep ends it
        wait_until(lambda: store.get_run(run.id).status.is_terminal(), 90, "the sweep")
        record = store.get_run(run.id)
        assert record.status.value == "Failed"
        assert "stopped sending heartbeats" in str(record.error)
    finally:
        store.close()
    assert time.time()


def test_a_run_waiting_for_a_free_supervisor_is_kept_alive_by_the_server(  # type: ignore[no-untyped-def]
    pg, tmp_path: Path
) -> None:
    """One supervisor, two runs: the second waits in the queue (no supervisor, no beat of its
    own) and the server beats for it, so no reader judges it lost however long it waits."""
    database = pg.create_database()
    store = ServerStore(database)
    store.add_user("ada")
    token = store.create_token("ada")
    env = {**os.environ, "FERRY_HOME": str(tmp_path / "home"), "FERRY_TOKEN": token}
    env.pop("FERRY_DATABASE_URL", None)
    proc, url, _log = start_server(database, tmp_path / "server", supervisors=1, env=env)
    project = tmp_path / "project"
    (project / ".ferry").mkdir(parents=True)
    (project / ".ferry" / "config.json").write_text(json.dumps({"server": url}))
    flag = tmp_path / "release"
    _runs_until_flag(project, flag)
    try:
        first, second = (
            next(
                w
                for w in _cli(
                    project, "submit", "wait.py", "-e", "q", "--no-wait", env=env
                ).stdout.split()
                if w.startswith("q_")
            )
            for _ in range(2)
        )
        wait_until(lambda: store.get_run(first).status.value == "Running", 60, "the first run")
        waiting = store.get_run(second)
        assert waiting.status == RunStatus.QUEUED and waiting.supervisor_pid is None
        beaten = waiting.heartbeat_at or 0.0
        wait_until(
            lambda: (store.get_run(second).heartbeat_at or 0.0) > beaten + 1.5,
            30,
            "the server to beat for the waiting run",
        )
        assert store.get_run(second).status == RunStatus.QUEUED
        flag.write_text("go")
        wait_until(lambda: store.get_run(second).status.is_terminal(), 90, "the second run")
        assert store.get_run(second).status == RunStatus.COMPLETED
    finally:
        stop(proc)
        store.close()
