"""Running a job's ranks in containers, for the targets that run them (local, and SSH hosts).

A target that runs containers checks the request at submit (:func:`check_docker_job`), finds or
builds the environment's image while the run prepares (:func:`prepare_image`), and starts each
rank as Docker's client in the foreground under the job's watchdog (:func:`rank_launch`,
:mod:`ferry.agent.container`):

* the run folder (snapshot copy, logs, spool) and the in-job runtime are mounted at the paths
  they have on the machine, so the runtime protocol's variables mean the same inside;
* the job runs as the submitting user (``--user uid:gid``, ``HOME=/tmp``), on the host's
  network, with the run's ``shm_size`` and ``arguments``; GPUs are passed when the run asks for
  them (the NCCL backend, a CUDA/GPU base image) and the machine has them;
* its variables go by name (``--env NAME``), their values through the client's environment;
* its stderr goes into its stdout inside the container (``/bin/sh -c 'exec "$@" 2>&1'``), so
  the log keeps the order in which lines were written;
* one container per rank, named ``ferry-<run id>-<rank>``: the watchdog stops it by that name.

Example::

    image = prepare_image(job, engine, envs_dir, ctx.log)
    launch = rank_launch(job, image, engine, rank=0, command=["python", "train.py"],
                         variables=protocol_vars, mounts=[(run_dir, False), (runtime, True)])
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ferry.agent import container
from ferry.errors import TargetRefused
from ferry.spec import DockerSpec, EnvironmentSpec, JobSpec

Log = Callable[[str], None]


@dataclass(frozen=True)
class RankContainer:
    """One rank's container: the client's command line and environment, and how to stop it."""

    argv: list[str]
    env: dict[str, str]
    name: str
    stop: dict[str, str] = field(default_factory=dict)  # the watchdog's {"engine", "name"}


#: said in the run's log when Docker by habit runs as a plain environment
HABIT_WITHOUT_ENGINE = (
    "Docker was asked for without an image or Dockerfile (the reference's habit) and no "
    "Docker engine answers {where}: this run uses a plain environment"
)


def without_docker(env: EnvironmentSpec) -> EnvironmentSpec:
    """The same environment, run plain (no container)."""
    return replace(env, docker=DockerSpec())


def engine_answers(address: str | None = None) -> bool:
    """A Docker engine answers here (one quick version request)."""
    where = address or container.engine_address(os.environ)
    try:
        container.version(where, timeout=1.0)
    except container.EngineError:
        return False
    return True


def runs_in_container_here(env: EnvironmentSpec) -> bool:
    """An explicit image always means a container (refused at submit without an engine);
    Docker by habit means one only when an engine answers, else a plain environment."""
    return env.docker.wanted and (env.docker.enabled or engine_answers())


def check_docker_job(name: str, kind: str, job: JobSpec, *, engine_here: bool = True) -> None:
    """Refuse at submit a Docker job that cannot run: no engine on this machine (with how to
    start one; ``engine_here=False`` where the engine is another machine's), an MPI job (its
    ranks would need mpirun inside the image), a build context that is not usable."""
    from ferry.envbuild.docker_context import check_context
    from ferry.envbuild.docker_engine import check_engine

    plan = job.distributed
    if plan is not None and plan.kind == "mpi":
        raise TargetRefused(
            f"compute target {name!r} ({kind}) does not start MPI jobs in containers; use "
            "PyTorchConfiguration (one container per rank), or a plain environment for MPI",
            run_id=job.run_id,
            target=name,
        )
    context = job.environment.docker.build_context
    if context is not None:
        check_context(context.location, context.dockerfile)
    if engine_here:
        check_engine(run_id=job.run_id, target=name)


def prepare_image(
    job: JobSpec,
    engine: str,
    envs_dir: Path,
    log: Log,
    cancelled: Callable[[], bool] | None = None,
) -> Any:
    """The environment's image on ``engine`` (built first when missing, the build streamed to
    ``log``; stopped when ``cancelled()`` turns true)."""
    from ferry.envbuild.docker_build import ensure_image

    return ensure_image(
        job.environment, engine, log=lambda line: log(line), lock_dir=envs_dir,
        cancelled=cancelled,
    )  # fmt: skip


def container_name(run_id: str, rank: int) -> str:
    return f"ferry-{run_id}-{rank}"


def wants_gpus(job: JobSpec) -> bool:
    """The run asks for GPUs: the NCCL backend, or a base image built for CUDA/GPUs."""
    plan = job.distributed
    image = (job.environment.docker.base_image or "").lower()
    return (plan is not None and plan.backend == "nccl") or "cuda" in image or "gpu" in image


def gpu_note(job: JobSpec, present: bool) -> str | None:
    """A line for the log when GPUs were asked for and this machine has none."""
    if wants_gpus(job) and not present:
        return (
            "ferry: the run asks for GPUs and this machine shows none: the container runs without"
        )
    return None


def rank_launch(
    job: JobSpec,
    *,
    image: str,
    engine: str,
    rank: int,
    command: Sequence[str],
    variables: Mapping[str, str],
    mounts: Sequence[tuple[str, bool]],
    workdir: str,
    user: str,
    gpus: bool,
    base_env: Mapping[str, str],
    docker: str = "docker",
) -> RankContainer:
    """The client's command line and environment for one rank (see the module docstring).

    ``variables`` are what the job sees (the protocol's, the environment's, the run's and the
    rank's); ``base_env`` is the client's own environment on that machine."""
    name = container_name(job.run_id, rank)
    inline = {} if "HOME" in variables else {"HOME": "/tmp"}
    argv = container.run_argv(
        {
            "docker": docker,
            "image": image,
            "name": name,
            "user": user,
            "workdir": workdir,
            "mounts": [[path, read_only] for path, read_only in mounts],
            "env_names": sorted(variables),
            "env": inline,
            "shm_size": job.environment.docker.shm_size,
            "gpus": gpus,
            "labels": {"ferry.run": job.run_id, "ferry.rank": str(rank)},
            "arguments": list(job.environment.docker.arguments),
            # one stream: the engine reads stdout and stderr through two pipes and loses their
            # order (a traceback would land before the lines printed ahead of it)
            "command": ["/bin/sh", "-c", 'exec "$@" 2>&1', "ferry-job", *command],
        }
    )
    env = {**base_env, **variables, "DOCKER_HOST": engine}
    return RankContainer(argv, env, name, {"engine": engine, "name": name})


def docker_client_path(environ: Mapping[str, str] = os.environ) -> str:
    """Docker's client on this machine (checked at submit by ``check_engine``)."""
    return shutil.which("docker", path=environ.get("PATH")) or "docker"


def folders_to_mount(run_dir: Path, workdir: Path, runtime: Path) -> list[tuple[str, bool]]:
    """The run folder (read-write), the working folder when it lies outside it, the runtime
    (read-only)."""
    mounts = [(str(run_dir), False)]
    if not workdir.resolve().is_relative_to(run_dir.resolve()):
        mounts.append((str(workdir), False))
    mounts.append((str(runtime), True))
    return mounts
