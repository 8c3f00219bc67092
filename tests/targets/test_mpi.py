"""MPI jobs on the local target: one real Open MPI ``mpirun`` under the job's watchdog, proved
with an mpi4py all-reduce; a failing rank, a cancel, and a machine without mpirun."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from mpi_jobs import FAILING_RANK, SLEEPER, need_open_mpi, rank_two_failed, running_ranks

from ferry.agent.proc import pid_alive
from ferry.errors import TargetRefused
from ferry.experiment import Experiment
from ferry.runconfig import MpiConfiguration, RunConfiguration
from ferry.script_run_config import ScriptRunConfig
from ferry.spec import DistributedPlan
from ferry.targets.mpi import RANK_LAUNCHER, OpenMpi, group_exit, mpirun_argv
from ferry.testing.conformance import wait_until

OPEN_MPI = OpenMpi("/usr/bin/mpirun.openmpi", "Open MPI 4.1.4")


def _submit(workspace, folder: Path, body: str, src_config: dict[str, Any]):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return Experiment(workspace, "mpi").submit(ScriptRunConfig(str(folder), "job.py", **src_config))


# ------------------------------------------------------------------------------------------------
# the command line and mpirun's report (pure)


def test_one_mpirun_starts_every_rank_and_the_jobs_argv_stays_off_its_command_line() -> None:
    plan = DistributedPlan("mpi", 1, 3)
    command = Path("/runs/a b/mpi_command.json")
    argv = mpirun_argv(OPEN_MPI, plan, command, as_root=True, python="/py")
    assert argv == [
        OPEN_MPI.path, "-np", "3", "--bind-to", "none", "--oversubscribe", "--allow-run-as-root",
        "/py", "-I", "-S", str(RANK_LAUNCHER), str(command),
    ]  # fmt: skip
    assert "--allow-run-as-root" not in mpirun_argv(OPEN_MPI, plan, command, as_root=False)


MPIRUN_EXITED = """rank 0 pid 13496
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun detected that one or more processes exited with non-zero status, thus causing
the job to be terminated. The first process to do so was:

  Process name: [[22602,1],2]
  Exit code:    1
--------------------------------------------------------------------------
"""
MPIRUN_SIGNALLED = """rank 0
--------------------------------------------------------------------------
mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).
--------------------------------------------------------------------------
"""

MPIRUN_ABORTED = """KeyError: 'rank two'
--------------------------------------------------------------------------
MPI_ABORT was invoked on rank 2 in communicator MPI_COMM_WORLD
with errorcode 4.

NOTE: invoking MPI_ABORT causes Open MPI to kill all MPI processes.
--------------------------------------------------------------------------
"""


def test_the_rank_that_failed_first_is_read_from_mpiruns_report(tmp_path: Path) -> None:
    log = tmp_path / "std_log.txt"
    for report, code, expected in [
        (MPIRUN_EXITED, 1, (2, 1)),
        (MPIRUN_SIGNALLED, 137, (1, -9)),
        (MPIRUN_ABORTED, 4, (2, 4)),
    ]:
        log.write_text(report)
        ended = group_exit(code, tmp_path, 3)
        assert ended is not None and (ended.failed_rank, ended.code) == expected, report
    assert group_exit(0, tmp_path, 3) is None
    log.write_text("Traceback (most recent call last):\nValueError: rank 0 has it already\n")
    assert group_exit(1, tmp_path, 3) is None


def test_without_mpiruns_report_the_first_rank_with_a_traceback_failed(tmp_path: Path) -> None:
    """Open MPI 4.1 sometimes loses the report of an MPI_Abort; the ranks' logs still say."""
    (tmp_path / "std_log.txt").write_text(
        "rank 0\n[vm:1] [[12376,0],0] ORTE_ERROR_LOG: Data unpack would read past end of buffer\n"
    )
    (tmp_path / "std_log_rank_1.txt").write_text("rank 1\n")
    (tmp_path / "std_log_rank_2.txt").write_text(
        "Traceback (most recent call last):\n  File x\nKeyError: 'two'\n"
    )
    ended = group_exit(1, tmp_path, 3)
    assert ended is not None and (ended.failed_rank, ended.code) == (2, 1)


# ------------------------------------------------------------------------------------------------
# real runs


ALL_REDUCE = """
import os, sys
from mpi4py import MPI
from ferry import Run
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1)
print("rank", comm.Get_rank(), "of", comm.Get_size(), "total", total, "RANK", os.environ["RANK"],
      "args", sys.argv[1:], flush=True)
Run.get_context().log("total", total)
if comm.Get_rank() == 0:
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/total.txt", "w") as fh:
        fh.write(str(total))
"""


def _mpi_config(ranks: int) -> dict[str, Any]:
    """Both spellings of the reference: MpiConfiguration, and RunConfiguration's communicator."""
    if ranks == 2:
        return {"distributed_job_config": MpiConfiguration(process_count_per_node=2)}
    rc = RunConfiguration(communicator="IntelMpi")
    rc.mpi.process_count_per_node = ranks
    return {"run_config": rc}


@pytest.mark.parametrize("ranks", [2, 3])
def test_an_mpi4py_all_reduce_over_real_mpirun(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, tmp_path: Path, ranks: int
) -> None:
    need_open_mpi()
    arguments = [":", "it's a b", "-np"]  # ":" would split the job on mpirun's command line
    config = _mpi_config(ranks)
    config["arguments"] = arguments
    run = _submit(workspace, awkward_dir / f"sum{ranks}", ALL_REDUCE, config)
    details = run.wait_for_completion(raise_on_error=False)
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    total = ranks * (ranks + 1) // 2
    assert details["status"] == "Completed", (logs / "std_log.txt").read_text()
    main = (logs / "std_log.txt").read_text()
    assert "Open MPI" in main and f"-np {ranks} " in main  # ferry's line says how it started
    for rank in range(ranks):
        text = (logs / ("std_log.txt" if rank == 0 else f"std_log_rank_{rank}.txt")).read_text()
        assert f"rank {rank} of {ranks} total {total} RANK {rank} args {arguments}" in text, text
    assert run.get_metrics()["total"] == [total] * ranks
    names = set(run.get_file_names())
    assert {f"user_logs/std_log_rank_{r}.txt" for r in range(1, ranks)} <= names
    assert Path(run.download_file("outputs/total.txt", tmp_path / "t.txt")).read_text() == str(
        total
    )


def test_a_job_without_mpi4py_runs_as_given_with_the_rank_variables(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    """Any program can be the job (here a Python 3.8 without mpi4py): it runs as given, each
    rank with Open MPI's variables and torch.distributed's names beside them."""
    from ferry.environment import Environment

    need_open_mpi()
    python38 = Path.home() / ".pyenv/versions/3.8.18/bin/python"
    if not python38.exists():
        pytest.fail(f"this test needs Python 3.8 at {python38}: pyenv install 3.8.18")
    env = Environment("py38")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = str(python38)
    body = """
    import os, sys
    e = os.environ
    print(sys.version_info[:2], "OMPI", e["OMPI_COMM_WORLD_RANK"], e["OMPI_COMM_WORLD_SIZE"],
          "RANK", e["RANK"], e["LOCAL_RANK"], e["WORLD_SIZE"], e["AZ_BATCHAI_MPI_MASTER_NODE"])
    """
    config = {"distributed_job_config": MpiConfiguration(process_count_per_node=2)}
    run = _submit(workspace, awkward_dir / "py38", body, {**config, "environment": env})
    details = run.wait_for_completion(raise_on_error=False)
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    main = (logs / "std_log.txt").read_text()
    assert details["status"] == "Completed", main
    assert "mpi4py is not in the job's environment, so the script runs as given" in main
    assert "(3, 8) OMPI 0 2 RANK 0 0 2 127.0.0.1" in main
    assert "(3, 8) OMPI 1 2 RANK 1 1 2 127.0.0.1" in (logs / "std_log_rank_1.txt").read_text()


def test_a_failing_rank_fails_the_run_with_its_error(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    need_open_mpi()
    config = {"distributed_job_config": MpiConfiguration(process_count_per_node=3)}
    run = _submit(workspace, awkward_dir / "fail", FAILING_RANK, config)
    t = time.monotonic()
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and time.monotonic() - t < 60, details
    logs = Path(details["logFiles"]["user_logs/std_log.txt"]).parent
    names = ["std_log.txt", "std_log_rank_1.txt", "std_log_rank_2.txt"]  # the main log first
    rank_two_failed(details, [(logs / name).read_text() for name in names])


def test_cancel_stops_mpirun_and_every_rank(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    need_open_mpi()
    config = {"distributed_job_config": MpiConfiguration(process_count_per_node=2)}
    run = _submit(workspace, awkward_dir / "cancel", SLEEPER, config)
    pids = running_ranks(run.run_dir / "user_logs")
    assert run.cancel() is True
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, what="the ranks to die")


def test_the_ranks_go_with_a_supervisor_that_dies(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The ranks are mpirun's children in process groups of their own; the watchdog still
    stops them when the run's supervisor is killed (its control pipe closes)."""
    import signal

    need_open_mpi()
    body = """
    import os, time
    print("pid", os.getpid(), "mpirun", os.getppid(), flush=True)
    time.sleep(300)
    """
    config = {"distributed_job_config": MpiConfiguration(process_count_per_node=2)}
    run = _submit(workspace, awkward_dir / "orphans", body, config)
    pids = running_ranks(run.run_dir / "user_logs")
    supervisor = workspace.store.get_run(run.id).supervisor_pid
    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="the ranks to die")


# ------------------------------------------------------------------------------------------------
# refusals at submit


@pytest.mark.parametrize("mpirun", [None, "#!/bin/sh\necho 'HYDRA build details:'\n"])
def test_an_mpi_job_without_open_mpi_is_refused_before_the_run_exists(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mpirun
) -> None:
    from ferry.tracking import RunQuery

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if mpirun is not None:  # another MPI's launcher (MPICH's says HYDRA)
        (bin_dir / "mpirun").write_text(mpirun)
        os.chmod(bin_dir / "mpirun", 0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    config = {"distributed_job_config": MpiConfiguration(process_count_per_node=2)}
    with pytest.raises(TargetRefused, match="apt-get install openmpi-bin") as refused:
        _submit(workspace, awkward_dir / "nompi", "print('x')", config)
    assert ("no mpirun" if mpirun is None else "HYDRA build details") in str(refused.value)
    assert workspace.store.list_runs(RunQuery()) == []


def test_kinds_that_do_not_start_mpirun_refuse_mpi_jobs() -> None:
    from ferry.spec import JobCommand, JobSpec, RunPaths
    from ferry.targets.mpi import refuse_where_mpirun_is_not_started

    def job(plan: DistributedPlan | None) -> JobSpec:
        return JobSpec(
            run_id="e_1_abcdef12", experiment="e", target="vm", paths=RunPaths(Path("/r")),
            command=JobCommand.of_script("t.py"), distributed=plan,
        )  # fmt: skip

    with pytest.raises(TargetRefused, match="cannot start MPI jobs") as refused:
        refuse_where_mpirun_is_not_started("vm", "ssh", job(DistributedPlan("mpi", 1, 2)))
    assert refused.value.target == "vm" and "communication_backend='Gloo'" in str(refused.value)
    refuse_where_mpirun_is_not_started("vm", "ssh", job(DistributedPlan("pytorch", 1, 2, "gloo")))
    refuse_where_mpirun_is_not_started("vm", "ssh", job(None))
