"""A dropped SSH connection during a run: reconnect and go on, or fail saying so; never hang."""

from __future__ import annotations

import time
from pathlib import Path

import sshd
from sshd import SshServer

from ferry.compute import ComputeTarget, RemoteCompute
from ferry.experiment import Experiment
from ferry.liveness import pid_alive
from ferry.run import Run
from ferry.script_run_config import ScriptRunConfig
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

JOB = """
import os, sys, time
from ferry import Run
run = Run.get_context()
open({pid!r}, "w").write(str(os.getpid()))
print("before the drop", flush=True)
run.log("step", 1)
while not os.path.exists({flag!r}):
    time.sleep(0.05)
run.log("step", 2)
os.makedirs("outputs", exist_ok=True)
open("outputs/result.txt", "w").write("done")
print("after the drop", flush=True)
"""


def _start(ws, folder: Path, server: SshServer, remote: Path, **settings) -> tuple[Run, Path, Path]:  # type: ignore[no-untyped-def]
    config = server.attach_config(work_dir=str(remote), **settings)
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(**config))
    source = folder / "src"
    source.mkdir()
    pid, flag = folder / "job.pid", folder / "go.flag"
    (source / "job.py").write_text(JOB.format(pid=str(pid), flag=str(flag)))
    run = Experiment(ws, "drops").submit(
        ScriptRunConfig(str(source), "job.py", compute_target="vm")
    )
    wait_until(lambda: "before the drop" in _log(run), what="the job's first line")
    return run, pid, flag


def _log(run: Run) -> str:
    path = run.run_dir / "user_logs" / "std_log.txt"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_dropped_connection_reconnects_and_the_run_goes_on(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    run, _, flag = _start(workspace, awkward_dir, ssh_server, remote_root / "drop")
    assert ssh_server.drop_connections() > 0
    wait_until(lambda: "reconnected after" in _log(run), timeout=10, what="the reconnection")
    flag.touch()
    details = run.wait_for_completion()
    assert details["status"] == "Completed"
    log = _log(run)
    assert log.count("before the drop") == 1 and "after the drop" in log
    assert run.get_metrics()["step"] == [1, 2]
    assert "outputs/result.txt" in run.get_file_names()


def test_restarted_sshd_is_reconnected(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    run, _, flag = _start(
        workspace, awkward_dir, ssh_server, remote_root / "restart", lease_seconds=8
    )
    ssh_server.stop()
    time.sleep(1.5)
    assert run.get_status() == "Running"
    ssh_server.start()
    wait_until(lambda: "reconnected after" in _log(run), timeout=10, what="the reconnection")
    flag.touch()
    assert run.wait_for_completion()["status"] == "Completed"


def test_host_gone_for_good_fails_the_run_and_the_job_dies(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    run, pid_file, _ = _start(workspace, awkward_dir, ssh_server, remote_root / "gone")
    ssh_server.stop()
    t = time.monotonic()
    try:
        details = run.wait_for_completion(raise_on_error=False)
        assert time.monotonic() - t < 15
        assert details["status"] == "Failed"
        message = details["error"]["error"]["message"]
        assert "lost the SSH connection" in message and "could not reconnect" in message
        assert details["error"]["error"]["code"] == "JobLost"
        job = int(pid_file.read_text())
        wait_until(lambda: not pid_alive(job), timeout=10, what="the watchdog to stop the job")
    finally:
        ssh_server.start()


def test_a_run_on_an_unreachable_host_fails_fast_and_says_why(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    from sshd import free_port

    config = ssh_server.attach_config(work_dir=str(remote_root / "never"), ssh_port=free_port())
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text("print('never runs')\n")
    t = time.monotonic()
    run = Experiment(workspace, "drops").submit(
        ScriptRunConfig(str(source), "job.py", compute_target="vm")
    )
    details = run.wait_for_completion(raise_on_error=False)
    assert time.monotonic() - t < 10
    assert details["status"] == "Failed"
    message = details["error"]["error"]["message"]
    assert "refused" in message and "ssh_port" in message and "Traceback" not in _log(run)
    assert details["error"]["error"]["code"] == "TargetUnavailable"  # worth retrying


def test_later_runs_reach_the_agent_daemon_through_a_private_socket(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    import json
    import stat

    work = remote_root / "daemon"
    run, _, flag = _start(workspace, awkward_dir, ssh_server, work)
    flag.touch()
    assert run.wait_for_completion()["status"] == "Completed"
    cached = json.loads((workspace.path / "cache" / "ssh" / "vm.json").read_text())
    socket_path = Path(cached["socket"])
    assert socket_path.is_relative_to(work / "bin")
    wait_until(socket_path.exists, timeout=10, what="the daemon's socket")
    assert stat.S_IMODE(socket_path.stat().st_mode) & 0o077 == 0  # the owner only
    source = awkward_dir / "src"
    second = Experiment(workspace, "drops").submit(
        ScriptRunConfig(str(source), "job.py", compute_target="vm")
    )
    assert second.wait_for_completion()["status"] == "Completed"
