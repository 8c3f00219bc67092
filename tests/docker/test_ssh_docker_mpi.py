"""MPI runs in containers on an SSH host (a real sshd on loopback, the host's engine): the
host's mpirun under the job's watchdog there, one container per rank — proved with a real
mpi4py all-reduce across the containers, a failing rank's error at the end of the main log, and
a cancel that leaves no container."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any

import sshd
from sshd import SshServer

from ferry import Environment, Experiment, ScriptRunConfig, Workspace
from ferry.compute import ComputeTarget, RemoteCompute
from ferry.envbuild.docker_engine import client
from ferry.runconfig import DockerConfiguration, MpiConfiguration

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

#: what each rank reports: its MPI world, its variables, its container (cgroup) and the sum
REPORT = """
import json, os
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.rank + 1)
big = bytearray(8 << 20)  # a message larger than the eager limits: the shared-memory path
world.Bcast(big, root=world.size - 1)
print("RANK " + json.dumps({
    "rank": world.rank, "size": world.size, "sum": total, "uid": os.getuid(),
    "ompi": os.environ.get("OMPI_COMM_WORLD_RANK"), "torch": os.environ.get("RANK"),
    "cwd": os.getcwd(), "box": open("/proc/self/cgroup").read().strip(),
}), flush=True)
"""


def _mpi_env() -> Environment:
    env = Environment("mpi-box")  # the same specification as test_docker_mpi's: one image
    env.python.conda_dependencies.add_pip_package("mpi4py>=4.0")
    return env


def _submit(ws: Workspace, server: SshServer, root: Path, engine: str, folder: Path,
            body: str, ranks: int) -> Any:  # fmt: skip
    config = server.attach_config(work_dir=str(root), docker_host=engine)
    ComputeTarget.attach(ws, "vm", RemoteCompute.attach_configuration(**config))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return Experiment(ws, "mpi-ssh-docker").submit(
        ScriptRunConfig(
            str(folder), "job.py", compute_target="vm", environment=_mpi_env(),
            distributed_job_config=MpiConfiguration(process_count_per_node=ranks),
            docker_runtime_config=DockerConfiguration(use_docker=True),
        )
    )  # fmt: skip


def _logs(ws: Workspace, run_id: str) -> dict[str, str]:
    folder = ws.runs_dir / run_id / "user_logs"
    return {p.name: p.read_text(errors="replace") for p in sorted(folder.glob("std_log*.txt"))}


def _boxes(run_id: str) -> list[Any]:
    found = client().containers.list(
        all=True, sparse=True, filters={"label": f"ferry.run={run_id}"}
    )
    return list(found)


def test_an_mpi4py_all_reduce_across_rank_containers_on_a_host(  # type: ignore[no-untyped-def]
    workspace: Workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path,
    engine: Any,
) -> None:  # fmt: skip
    run = _submit(workspace, ssh_server, remote_root, engine.address, awkward_dir / "sum",
                  REPORT, ranks=3)  # fmt: skip
    details = run.wait_for_completion(raise_on_error=False)
    logs = _logs(workspace, run.id)
    assert details["status"] == "Completed", logs
    reports = sorted(
        (json.loads(line[5:]) for text in logs.values() for line in text.splitlines()
         if line.startswith("RANK ")),
        key=lambda r: int(r["rank"]),
    )  # fmt: skip
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
    assert _boxes(run.id) == []


def test_a_failing_rank_in_its_container_fails_the_run_with_its_error(  # type: ignore[no-untyped-def]
    workspace: Workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path,
    engine: Any,
) -> None:  # fmt: skip
    body = """
    from mpi4py import MPI
    if MPI.COMM_WORLD.rank == 1:
        raise KeyError("rank one has no key")
    MPI.COMM_WORLD.Barrier()
    """
    run = _submit(workspace, ssh_server, remote_root, engine.address, awkward_dir / "fail",
                  body, ranks=2)  # fmt: skip
    details = run.wait_for_completion(raise_on_error=False)
    main = _logs(workspace, run.id)["std_log.txt"]
    assert details["status"] == "Failed", main
    assert "KeyError: 'rank one has no key'" in details["error"]["error"]["message"]
    assert "ferry: rank 1 exited with code 1" in main
    assert main.rstrip().endswith("KeyError: 'rank one has no key'"), main[-2000:]
    assert _boxes(run.id) == []


def test_cancel_stops_every_rank_container_on_the_host(  # type: ignore[no-untyped-def]
    workspace: Workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path,
    engine: Any,
) -> None:  # fmt: skip
    body = """
    import time
    from mpi4py import MPI
    MPI.COMM_WORLD.Barrier()
    print("READY", MPI.COMM_WORLD.rank, flush=True)
    time.sleep(300)
    """
    run = _submit(workspace, ssh_server, remote_root, engine.address, awkward_dir / "cancel",
                  body, ranks=3)  # fmt: skip
    deadline = time.monotonic() + 180  # the image may be built first
    while sum("READY" in t for t in _logs(workspace, run.id).values()) < 3:
        assert time.monotonic() < deadline, _logs(workspace, run.id)
        time.sleep(0.2)
    assert len([b for b in _boxes(run.id) if b.status == "running"]) == 3
    run.cancel()
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    deadline = time.monotonic() + 20
    while _boxes(run.id):
        assert time.monotonic() < deadline, [b.name for b in _boxes(run.id)]
        time.sleep(0.1)


def test_an_image_without_open_mpi_fails_the_run_naming_the_hosts_mpirun(  # type: ignore[no-untyped-def]
    workspace: Workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path,
    engine: Any,
) -> None:  # fmt: skip
    from ferry.envbuild.docker_base import base_tag

    config = ssh_server.attach_config(work_dir=str(remote_root), docker_host=engine.address)
    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    source = awkward_dir / "nompi"
    source.mkdir()
    (source / "job.py").write_text("print('JOB RAN')\n")
    env = Environment.from_dockerfile(  # the base image is on the engine (the runs above)
        "no-mpi",
        f"FROM {base_tag()}\nRUN apt-get purge -y -qq 'openmpi-*' 'libopenmpi*' >/dev/null\n",
    )
    run = Experiment(workspace, "mpi-ssh-docker").submit(
        ScriptRunConfig(
            str(source), "job.py", compute_target="vm", environment=env,
            distributed_job_config=MpiConfiguration(process_count_per_node=2),
        )
    )  # fmt: skip
    details = run.wait_for_completion(raise_on_error=False)
    log = _logs(workspace, run.id)["std_log.txt"]
    assert details["status"] == "Failed", log
    assert "has no Open MPI: use ferry's default base image" in log, log
    assert f"host {ssh_server.user}@127.0.0.1:{ssh_server.port}'s mpirun" in log
    assert "JOB RAN" not in log and _boxes(run.id) == []
