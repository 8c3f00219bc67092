"""MPI jobs on an SSH host (a real sshd on loopback): the host's Open MPI ``mpirun`` starts the
ranks under the job's watchdog there, found by the agent — proved with an mpi4py all-reduce and
with a program that only reads Open MPI's variables; a failing rank's error at the end of the
main log; a cancel that leaves no rank; hosts without Open MPI refused before anything runs."""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sshd
from mpi_jobs import (
    FAILING_RANK,
    SLEEPER,
    need_open_mpi,
    rank_two_failed,
    running_ranks,
)
from sshd import SshServer

from ferry import Workspace
from ferry.agent.proc import pid_alive
from ferry.compute import ComputeTarget, RemoteCompute
from ferry.environment import Environment
from ferry.experiment import Experiment
from ferry.runconfig import MpiConfiguration
from ferry.script_run_config import ScriptRunConfig
from ferry.testing.conformance import wait_until

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

PYTHON38 = Path(os.environ.get("FERRY_TEST_PYTHON38", "~/.pyenv/versions/3.8.18/bin/python"))


def _python_env(python: str = sys.executable, name: str = "host-venv") -> Environment:
    """The host's own Python as the job's (the host is this machine: ferry's venv, mpi4py)."""
    env = Environment(name)
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = python
    return env


def _attach(ws: Any, server: SshServer, work: Path, **settings: Any) -> None:
    config = server.attach_config(work_dir=str(work), **settings)
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(**config))


def _submit(ws: Any, folder: Path, body: str, ranks: int, env: Environment | None = None) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    config = ScriptRunConfig(
        str(folder), "job.py", compute_target="vm", environment=env or _python_env(),
        arguments=[":", "it's a b"],  # ":" would split the job on mpirun's command line
        distributed_job_config=MpiConfiguration(process_count_per_node=ranks),
    )  # fmt: skip
    return Experiment(ws, "mpi-ssh").submit(config)


def _ended(ws: Any, run: Any) -> tuple[dict[str, Any], dict[int, str]]:
    """The run's details once it has ended, and its logs by rank (the main log is rank 0's)."""
    details = run.wait_for_completion(raise_on_error=False)
    folder = ws.runs_dir / run.id / "user_logs"
    logs = {0: (folder / "std_log.txt").read_text(errors="replace")}
    for path in folder.glob("std_log_rank_*.txt"):
        logs[int(path.stem.rsplit("_", 1)[1])] = path.read_text(errors="replace")
    return details, logs


@pytest.fixture
def work(remote_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    folder = remote_root / request.node.name[:40]
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def mpi_host(workspace: Workspace, ssh_server: SshServer, work: Path) -> None:
    """The sshd attached as compute target ``vm``: this machine, with Open MPI and mpi4py."""
    need_open_mpi()
    _attach(workspace, ssh_server, work)


ALL_REDUCE = """
import os, sys
from mpi4py import MPI
from ferry import Run
world = MPI.COMM_WORLD
total = world.allreduce(world.Get_rank() + 1)
e = os.environ
print("rank", world.Get_rank(), "of", world.Get_size(), "total", total, "OMPI",
      e["OMPI_COMM_WORLD_RANK"], e["OMPI_COMM_WORLD_SIZE"], "RANK", e["RANK"], e["WORLD_SIZE"],
      "args", sys.argv[1:], flush=True)
Run.get_context().log("total", total)
"""


def test_an_mpi4py_all_reduce_over_the_hosts_mpirun(
    workspace: Workspace, awkward_dir: Path, mpi_host: None
) -> None:
    run = _submit(workspace, awkward_dir / "sum", ALL_REDUCE, ranks=3)
    details, logs = _ended(workspace, run)
    assert details["status"] == "Completed", logs[0]
    assert re.search(r"Open MPI \d+\.\d+.* at /\S*mpirun", logs[0])  # found on the host
    assert "-np 3 " in logs[0] and "runs as `python -m mpi4py`" in logs[0]
    assert sorted(logs) == [0, 1, 2], "each rank's log came back"
    for rank in range(3):
        expected = f"rank {rank} of 3 total 6 OMPI {rank} 3 RANK {rank} 3 args [':', \"it's a b\"]"
        assert expected in logs[rank], logs[rank]
    assert run.get_metrics()["total"] == [6, 6, 6]
    assert {"user_logs/std_log_rank_1.txt", "user_logs/std_log_rank_2.txt"} <= set(
        run.get_file_names()
    )


def test_a_python_without_mpi4py_runs_as_given_with_open_mpis_variables(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, work: Path
) -> None:
    """The host's Python 3.8 (the agent's oldest) as the job's, without mpi4py: each rank still
    knows its place from Open MPI's variables and torch.distributed's names."""
    python38 = PYTHON38.expanduser()
    if not os.access(python38, os.X_OK):
        pytest.fail(f"this test needs Python 3.8 at {python38}: pyenv install 3.8.18")
    need_open_mpi()
    _attach(workspace, ssh_server, work, interpreter_path=str(python38))  # the agent on 3.8
    body = """
    import os, sys
    e = os.environ
    print(sys.version_info[:2], "OMPI", e["OMPI_COMM_WORLD_RANK"], e["OMPI_COMM_WORLD_SIZE"],
          "RANK", e["RANK"], e["LOCAL_RANK"], e["WORLD_SIZE"], flush=True)
    """
    run = _submit(workspace, awkward_dir / "py38", body, 2, _python_env(str(python38), "py38"))
    details, logs = _ended(workspace, run)
    assert details["status"] == "Completed", logs[0]
    assert "mpi4py is not in the job's environment, so the script runs as given" in logs[0]
    assert "(3, 8) OMPI 0 2 RANK 0 0 2" in logs[0]
    assert "(3, 8) OMPI 1 2 RANK 1 1 2" in logs[1]


def test_a_failing_rank_fails_the_run_with_its_error_at_the_end_of_the_main_log(
    workspace: Workspace, awkward_dir: Path, mpi_host: None
) -> None:
    run = _submit(workspace, awkward_dir / "fail", FAILING_RANK, ranks=3)
    details, logs = _ended(workspace, run)
    rank_two_failed(details, list(logs.values()))
    main = logs[0].rstrip()  # the failing rank's error, last
    assert main.endswith("KeyError: 'rank two lost its shard'"), main[-2000:]


def test_cancel_stops_mpirun_and_every_rank_on_the_host(
    workspace: Workspace, awkward_dir: Path, mpi_host: None
) -> None:
    run = _submit(workspace, awkward_dir / "cancel", SLEEPER, ranks=2)
    pids = running_ranks(workspace.runs_dir / run.id / "user_logs")
    assert run.cancel() is True
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="the ranks to die")


def test_the_time_limit_stops_every_rank(
    workspace: Workspace, awkward_dir: Path, mpi_host: None
) -> None:
    folder = awkward_dir / "limit"
    folder.mkdir()
    (folder / "job.py").write_text(SLEEPER, encoding="utf-8")
    config = ScriptRunConfig(
        str(folder), "job.py", compute_target="vm", environment=_python_env(),
        distributed_job_config=MpiConfiguration(process_count_per_node=2),
    )  # fmt: skip
    config.run_config.max_run_duration_seconds = 8
    run = Experiment(workspace, "mpi-ssh").submit(config)
    pids = running_ranks(workspace.runs_dir / run.id / "user_logs")
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["error"]["code"] == (
        "TimeLimitExceeded"
    ), details
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="the ranks to die")


def test_the_ranks_go_with_a_supervisor_that_dies(
    workspace: Workspace, awkward_dir: Path, mpi_host: None
) -> None:
    """Nobody follows the run any more: the host's watchdog stops mpirun and its ranks when
    the lease (3 s here) expires."""
    import signal

    run = _submit(workspace, awkward_dir / "orphans", SLEEPER, ranks=2)
    pids = running_ranks(workspace.runs_dir / run.id / "user_logs")
    supervisor = workspace.store.get_run(run.id).supervisor_pid
    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=20, what="the ranks to die")


# ------------------------------------------------------------------------------------------------
# hosts without Open MPI


@pytest.fixture(scope="module")
def bare_server() -> Iterator[SshServer]:
    """An sshd whose sessions get a PATH without Open MPI (the host has none for ferry)."""
    server = sshd.SshServer(Path(__import__("tempfile").mkdtemp(prefix="ferry-sshd-bare-")))
    bare = server.folder / "bin"
    bare.mkdir()
    with open(server.config_file, "a", encoding="utf-8") as fh:
        fh.write(f"SetEnv PATH={bare}\n")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def _refused(ws: Any, awkward_dir: Path, work: Path) -> str:
    run = _submit(ws, awkward_dir / "nompi", "print('JOB RAN')\n", ranks=2)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed", details
    assert not (work / "runs" / run.id / "wd").exists(), "nothing reached the host"
    assert "JOB RAN" not in (ws.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    return str(details["error"]["error"]["message"])


def test_a_host_without_mpirun_on_its_path_refuses_the_run_with_the_fix(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, bare_server: SshServer, work: Path
) -> None:
    _attach(workspace, bare_server, work, interpreter_path=sys.executable)
    message = _refused(workspace, awkward_dir, work)
    assert "compute target 'vm' cannot start MPI jobs" in message
    assert f"no mpirun on host {bare_server.user}@127.0.0.1:{bare_server.port}'s PATH" in message
    assert "apt-get install openmpi-bin" in message


@pytest.mark.parametrize("kind", ["missing", "mpich"])
def test_a_named_mpirun_that_is_missing_or_another_mpi_is_refused(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, work: Path, tmp_path: Path, kind: str
) -> None:
    mpirun = tmp_path / "bin" / "mpirun"
    if kind == "mpich":  # another MPI's launcher (MPICH's says HYDRA)
        mpirun.parent.mkdir()
        mpirun.write_text("#!/bin/sh\necho 'HYDRA build details:'\n")
        mpirun.chmod(0o755)
    _attach(workspace, ssh_server, work, mpirun=str(mpirun))
    message = _refused(workspace, awkward_dir, work)
    if kind == "missing":
        assert f"no mpirun at {mpirun} on host" in message
    else:
        assert f"{mpirun} on host" in message and "HYDRA build details" in message
    assert "apt-get install openmpi-bin" in message
