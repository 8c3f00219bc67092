"""Run settings an SSH target honours, over a real sshd: several processes on one host (a
distributed job with node_count=1), ``history.directories_to_watch`` (mirrored live),
``history.output_collection=False`` and ``history.snapshot_project=False``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import sshd
from sshd import SshServer

from ferry.compute import ComputeTarget, RemoteCompute
from ferry.experiment import Experiment
from ferry.run import Run
from ferry.runconfig import PyTorchConfiguration
from ferry.script_run_config import ScriptRunConfig
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root


def _setup(ws, server: SshServer, remote: Path, source: Path, body: str) -> None:  # type: ignore[no-untyped-def]
    config = server.attach_config(work_dir=str(remote))
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(**config))
    source.mkdir(parents=True)
    (source / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")


def test_several_processes_on_one_host(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "ranks"
    body = """
    import os, sys
    from ferry import Run
    rank = int(os.environ["RANK"])
    print("rank", rank, "of", os.environ["WORLD_SIZE"], "at", os.environ["MASTER_ADDR"], flush=True)
    Run.get_context().log("rank", rank)
    sys.exit(3 if rank == 1 else 0)
    """
    _setup(workspace, ssh_server, remote_root / "ranks", source, body)
    config = ScriptRunConfig(
        str(source),
        "job.py",
        compute_target="vm",
        distributed_job_config=PyTorchConfiguration("Gloo", process_count=2),
    )
    run = Experiment(workspace, "ranks").submit(config)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["exitCode"] == 3, details
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    assert "rank 0 of 2 at 127.0.0.1" in (logs / "std_log.txt").read_text()
    assert "rank 1 of 2 at 127.0.0.1" in (logs / "std_log_rank_1.txt").read_text()
    assert "ferry: rank 1 exited with code 3" in (logs / "std_log.txt").read_text()
    assert sorted(run.get_metrics()["rank"]) == [0, 1]
    assert "user_logs/std_log_rank_1.txt" in run.get_file_names()


def test_watched_folders_mirror_live_and_outputs_can_stay_behind(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    source = awkward_dir / "watched"
    flag = awkward_dir / "go"
    body = f"""
    import os, time
    os.makedirs("tb events", exist_ok=True)
    open("tb events/e.1", "w").write("event one")
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.bin", "w").write("weights")
    while not os.path.exists({str(flag)!r}):
        time.sleep(0.02)
    """
    _setup(workspace, ssh_server, remote_root / "watched", source, body)
    config = ScriptRunConfig(str(source), "job.py", compute_target="vm")
    config.run_config.history.directories_to_watch = ["tb events"]
    config.run_config.history.output_collection = False
    config.run_config.history.snapshot_project = False
    run: Run = Experiment(workspace, "watched").submit(config)
    try:
        wait_until(
            lambda: "tb events/e.1" in run.get_file_names(), timeout=20, what="a live mirror"
        )
        assert run.get_status() == "Running"
    finally:
        flag.touch()
    details = run.wait_for_completion()
    names = run.get_file_names()
    assert "tb events/e.1" in names and not any(n.startswith("outputs/") for n in names)
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert "output_collection is False" in log and "snapshot_project is False" in log
    assert run.get_snapshot_id() is None
