"""MPI runs in containers on the local target: this machine's mpirun, one container per rank.

Proved with a real mpi4py all-reduce across ranks in separate containers, a cancel that leaves
no container, an image without Open MPI named with the fix, and the pieces (each rank's
``docker run``, the watchdog's stop of every rank by one name) on their own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from mpi_report import (
    FAILING_RANK,
    REPORT,
    SLEEPER,
    cancel_leaves_no_container,
    ended,
    rank_containers,
    rank_reports,
    run_logs,
    submit_mpi,
    wait_ready,
)

from ferry import Environment, Workspace
from ferry.agent import container as agent
from ferry.agent.mpi_rank import in_container
from ferry.envbuild.docker_engine import client
from ferry.targets.container import ImageMpi, check_image_mpi
from ferry.testing.conformance import wait_until

# ------------------------------------------------------------------------------------------------
# the pieces


def test_each_rank_runs_dockers_client_with_its_name_and_the_mpi_variables_by_name() -> None:
    box = {"head": ["docker", "run", "--rm"], "tail": ["img", "sh"], "name": "ferry-r1-"}
    env = {"OMPI_COMM_WORLD_RANK": "2", "PMIX_RANK": "2", "RANK": "2", "SECRETISH": "x"}
    argv = in_container(box, ["python", "job.py", ":"], env)
    assert argv[:3] == ["docker", "run", "--rm"] and argv[-5:-3] == ["img", "sh"]
    assert argv[argv.index("--name") + 1] == "ferry-r1-2"
    assert "ferry.rank=2" in argv and argv[-3:] == ["python", "job.py", ":"]
    passed = {argv[i + 1] for i, word in enumerate(argv) if word == "--env"}
    assert {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "RANK", "LOCAL_RANK"} <= passed
    assert "SECRETISH" not in passed and not any("=" in name for name in passed)


def test_an_image_without_open_mpi_or_of_another_series_is_named_with_the_fix() -> None:
    from ferry.errors import TargetRefused

    def check(found: ImageMpi) -> None:
        check_image_mpi("img:1", "Open MPI 4.1.4", found, environment="mine", run_id="r1")

    with pytest.raises(TargetRefused, match=r"'mine'.*has no Open MPI: use ferry's default base"):
        check(ImageMpi("", False))
    with pytest.raises(TargetRefused, match=r"Open MPI v3\.1\.6.*same series.*openmpi-bin.*4\.1"):
        check(ImageMpi("Open MPI v3.1.6", True))
    check(ImageMpi("Open MPI v4.1.5", True))  # the same series: it works


def test_one_name_stops_every_rank_container_of_a_run_and_no_other(engine: Any) -> None:
    from ferry.envbuild.docker_base import ensure_default_base

    docker = client()
    base = ensure_default_base(docker, print)
    names = ["ferry-mpiA-0", "ferry-mpiA-1", "ferry-mpiAB-0"]
    for name in names:
        docker.containers.run(base, ["sleep", "60"], name=name, detach=True, remove=True,
                              network_mode="host")  # fmt: skip
    try:
        assert agent.kill(engine.address, "ferry-mpiA-*", "KILL")
        deadline = time.monotonic() + 20
        while any(agent.running(engine.address, n) for n in names[:2]):
            assert time.monotonic() < deadline, "the run's containers still run"
            time.sleep(0.1)
        assert agent.running(engine.address, "ferry-mpiAB-0")
        assert not agent.kill(engine.address, "ferry-mpiA-*", "KILL")  # none left
    finally:
        agent.kill(engine.address, "ferry-mpiAB-0", "KILL")


# ------------------------------------------------------------------------------------------------
# real runs


def test_an_mpi4py_all_reduce_across_ranks_in_one_container_each(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    run = submit_mpi(workspace, awkward_dir / "src", REPORT, ranks=3)
    details, logs = ended(workspace, run)
    assert details["status"] == "Completed", logs
    reports = rank_reports(logs)
    assert [r["rank"] for r in reports] == [0, 1, 2], logs
    for r in reports:
        assert (r["size"], r["sum"], r["world"], r["run"]) == (3, 6, "3", run.id), r
        assert r["ompi"] == r["torch"] == str(r["rank"]) and r["uid"] == __import__("os").getuid()
    assert len({r["box"] for r in reports}) == 3, "each rank in a container of its own"
    assert set(logs) == {"std_log.txt", "std_log_rank_1.txt", "std_log_rank_2.txt"}
    assert '"rank": 1' in logs["std_log_rank_1.txt"] and '"rank": 0' in logs["std_log.txt"]
    assert "one container per rank" in logs["std_log.txt"]
    assert "python -m mpi4py" in logs["std_log.txt"]
    assert "outlived its client" not in logs["std_log.txt"]  # each went with its rank
    assert rank_containers(run.id) == []


def test_a_failing_rank_fails_the_run_with_its_error(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    run = submit_mpi(workspace, awkward_dir / "src", FAILING_RANK, ranks=2)
    details, logs = ended(workspace, run)
    assert details["status"] == "Failed", logs
    assert "rank one has no key" in logs["std_log.txt"], logs  # repeated in the main log
    assert rank_containers(run.id) == []


def test_cancel_stops_every_rank_container(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    run = submit_mpi(workspace, awkward_dir / "src", SLEEPER, ranks=3)
    cancel_leaves_no_container(workspace, run, 3)


def test_the_rank_containers_go_with_a_supervisor_that_dies(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    import os
    import signal

    run = submit_mpi(workspace, awkward_dir / "src", SLEEPER, ranks=2)
    wait_ready(workspace, run.id, 2)
    assert len(rank_containers(run.id)) == 2
    supervisor = workspace.store.get_run(run.id).supervisor_pid
    assert supervisor
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not rank_containers(run.id), timeout=20, what="the rank containers to go")


def test_the_time_limit_stops_every_rank_container(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    warm = submit_mpi(workspace, awkward_dir / "warm", "print('warm')\n", ranks=1)
    assert warm.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    run = submit_mpi(  # the image is built (above): the limit is the ranks' own time
        workspace, awkward_dir / "src", SLEEPER, ranks=2, max_run_duration_seconds=15
    )
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed", details
    assert details["error"]["error"]["code"] == "TimeLimitExceeded"
    assert sum("READY" in t for t in run_logs(workspace, run.id).values()) == 2
    wait_until(lambda: not rank_containers(run.id), timeout=20, what="the rank containers to go")


def test_an_image_without_open_mpi_fails_the_run_saying_how_to_fix_it(
    workspace: Workspace, awkward_dir: Path, engine: Any
) -> None:
    from ferry.envbuild.docker_base import base_tag, ensure_default_base

    ensure_default_base(client(), print)  # the Dockerfile starts from it (run alone, too)
    env = Environment.from_dockerfile(
        "no-mpi",
        f"FROM {base_tag()}\nRUN apt-get purge -y -qq 'openmpi-*' 'libopenmpi*' >/dev/null\n",
    )
    run = submit_mpi(workspace, awkward_dir / "src", "print('never')\n", ranks=2, env=env)
    details, logs = ended(workspace, run)
    log = logs["std_log.txt"]
    assert details["status"] == "Failed", log
    assert "has no Open MPI: use ferry's default base image" in log, log
    assert "apt-get install openmpi-bin" in log and "never" not in log
    assert rank_containers(run.id) == []
