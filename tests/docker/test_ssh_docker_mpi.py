"""MPI runs in containers on an SSH host (a real sshd on loopback, the host's engine): the
host's mpirun under the job's watchdog there, one container per rank — proved with a real
mpi4py all-reduce across the containers, a failing rank's error at the end of the main log, and
a cancel that leaves no container."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sshd
from mpi_report import (
    FAILING_RANK,
    REPORT,
    SLEEPER,
    cancel_leaves_no_container,
    ended,
    rank_containers,
    rank_reports,
    submit_mpi,
)
from sshd import SshServer

from ferry import Environment, Workspace
from ferry.compute import ComputeTarget, RemoteCompute

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

#: ``submit(folder name, job body, ranks, env=None)``: the run on the host (see ``submit_mpi``)
Submit = Callable[..., Any]


@pytest.fixture
def on_host(
    workspace: Workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path, engine: Any
) -> Submit:
    """Submits MPI jobs in containers to the sshd attached as ``vm``, whose runs use the
    session's engine (the same image as test_docker_mpi's)."""
    config = ssh_server.attach_config(work_dir=str(remote_root), docker_host=engine.address)
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))

    def submit(name: str, body: str, ranks: int, env: Environment | None = None) -> Any:
        return submit_mpi(workspace, awkward_dir / name, body, ranks, env, "mpi-ssh-docker",
                          compute_target="vm")  # fmt: skip

    return submit


def test_an_mpi4py_all_reduce_across_rank_containers_on_a_host(
    workspace: Workspace, ssh_server: SshServer, remote_root: Path, on_host: Submit
) -> None:
    run = on_host("sum", REPORT, ranks=3)
    details, logs = ended(workspace, run)
    assert details["status"] == "Completed", logs
    reports = rank_reports(logs)
    assert [r["rank"] for r in reports] == [0, 1, 2], logs
    for r in reports:
        assert (r["size"], r["sum"], r["uid"]) == (3, 6, os.getuid()), r
        assert r["ompi"] == r["torch"] == str(r["rank"])
        assert r["cwd"].startswith(str(remote_root)), "the host's run folder, mounted"
    assert len({r["box"] for r in reports}) == 3, "each rank in a container of its own"
    main = logs["std_log.txt"]
    assert "one container per rank" in main and "python -m mpi4py" in main
    assert f"{ssh_server.user}@127.0.0.1:{ssh_server.port}: Open MPI" in main  # the host's
    assert set(logs) == {"std_log.txt", "std_log_rank_1.txt", "std_log_rank_2.txt"}
    assert rank_containers(run.id) == []


def test_a_failing_rank_in_its_container_fails_the_run_with_its_error(
    workspace: Workspace, on_host: Submit
) -> None:
    run = on_host("fail", FAILING_RANK, ranks=2)
    details, logs = ended(workspace, run)
    main = logs["std_log.txt"]
    assert details["status"] == "Failed", main
    assert "KeyError: 'rank one has no key'" in details["error"]["error"]["message"]
    assert "ferry: rank 1 exited with code 1" in main
    assert main.rstrip().endswith("KeyError: 'rank one has no key'"), main[-2000:]
    assert rank_containers(run.id) == []


def test_cancel_stops_every_rank_container_on_the_host(
    workspace: Workspace, on_host: Submit
) -> None:
    run = on_host("cancel", SLEEPER, ranks=3)
    cancel_leaves_no_container(workspace, run, 3)  # the image may be built first


def test_an_image_without_open_mpi_fails_the_run_naming_the_hosts_mpirun(
    workspace: Workspace, ssh_server: SshServer, on_host: Submit
) -> None:
    from ferry.envbuild.docker_base import base_tag

    env = Environment.from_dockerfile(  # the base image is on the engine (the runs above)
        "no-mpi",
        f"FROM {base_tag()}\nRUN apt-get purge -y -qq 'openmpi-*' 'libopenmpi*' >/dev/null\n",
    )
    run = on_host("nompi", "print('JOB RAN')\n", ranks=2, env=env)
    details, logs = ended(workspace, run)
    log = logs["std_log.txt"]
    assert details["status"] == "Failed", log
    assert "has no Open MPI: use ferry's default base image" in log, log
    assert f"host {ssh_server.user}@127.0.0.1:{ssh_server.port}'s mpirun" in log
    assert "JOB RAN" not in log and rank_containers(run.id) == []
