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

What every rank's container of a run shares is one :class:`ContainerPlan`, built once by the
target. An MPI run is the machine's ``mpirun`` under the watchdog, as a plain MPI run is
(:func:`mpi_launch` on this machine; on an SSH host the agent makes mpirun's command line from
:func:`mpi_box`); each rank it starts is Docker's client running that rank's container
(:mod:`ferry.agent.mpi_rank`), whose Open MPI finds that mpirun through the variables it is
given and the session folder it mounts (:func:`ferry.agent.mpirun.container_options`). The
watchdog stops them all by the name ``ferry-<run id>-*``. The image must hold the same Open MPI
series as that mpirun (:func:`check_image_mpi`, at prepare): ferry's default base image has
Debian's, an image of the user's own is named with the fix when it has none.

Example::

    image = prepare_image(job, engine, envs_dir, ctx.log)
    plan = ContainerPlan(image.tag, engine, ["python", "train.py"], protocol_vars,
                         [(run_dir, False), (runtime, True)], workdir, "1000:1000", False, {})
    launch = rank_launch(job, plan, rank=0)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ferry.agent import container
from ferry.agent.files import write_json
from ferry.errors import TargetRefused
from ferry.spec import DockerSpec, EnvironmentSpec, JobSpec
from ferry.targets.mpi import OpenMpi

Log = Callable[[str], None]


@dataclass(frozen=True)
class RankContainer:
    """One rank's container: the client's command line and environment, and how to stop it."""

    argv: list[str]
    env: dict[str, str]
    name: str
    stop: dict[str, str] = field(default_factory=dict)  # the watchdog's {"engine", "name"}
    first_line: str = ""  # ferry's line at the top of the log (how an MPI run starts)


@dataclass(frozen=True)
class ImageMpi:
    """What an image holds for MPI ranks: Open MPI's version (``Open MPI v4.1.4``, "" when it
    has none) and whether the job's Python has mpi4py."""

    version: str
    mpi4py: bool


#: said in the run's log when Docker by habit runs as a plain environment
HABIT_WITHOUT_ENGINE = (
    "Docker was asked for without an image or Dockerfile (the reference's habit) and no "
    "Docker engine answers {where}: this run uses a plain environment"
)


def without_docker(env: EnvironmentSpec) -> EnvironmentSpec:
    """The same environment, run plain (no container)."""
    return replace(env, docker=DockerSpec())


def engine_answers(address: str | None = None) -> bool:
    """A Docker engine answers here (one ping)."""
    where = address or container.engine_address(os.environ)
    try:
        container.ping(where, timeout=1.0)
    except container.EngineError:
        return False
    return True


def runs_in_container_here(env: EnvironmentSpec) -> bool:
    """An explicit image always means a container (refused at submit without an engine);
    Docker by habit means one only when an engine answers, else a plain environment."""
    return env.docker.wanted and (env.docker.enabled or engine_answers())


def check_docker_job(name: str, kind: str, job: JobSpec, *, engine_here: bool = True) -> None:
    """Refuse at submit a Docker job that cannot run: no engine on this machine (with how to
    start one; ``engine_here=False`` where the engine is another machine's), a build context
    that is not usable. (An MPI job's image is checked once it exists: :func:`prepare_image`.)"""
    from ferry.envbuild.docker_context import check_context
    from ferry.envbuild.docker_engine import check_engine

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
    ``log``; stopped when ``cancelled()`` turns true). For an MPI job, the image must hold
    this machine's Open MPI series (:func:`check_image_mpi`)."""
    from ferry.envbuild.docker_build import ensure_image

    image = ensure_image(
        job.environment, engine, log=lambda line: log(line), lock_dir=envs_dir,
        cancelled=cancelled,
    )  # fmt: skip
    if job.distributed is not None and job.distributed.kind == "mpi":
        from ferry.targets import mpi

        host = mpi.find_open_mpi("local", job.run_id).version
        found = image_mpi(engine, image.image_id, image.python, envs_dir / "docker-mpi")
        check_image_mpi(image.tag, host, found, environment=job.environment.name,
                        run_id=job.run_id)  # fmt: skip
        session_dir(job).mkdir(parents=True, exist_ok=True)
        write_json(str(session_dir(job) / IMAGE_MPI_FILE), asdict(found))  # for mpi_launch
    return image


def session_dir(job: JobSpec) -> Path:
    """Open MPI's session folder for an MPI run in containers (inside the run folder, which
    every rank's container mounts at the same path)."""
    return job.run_dir / "mpi"


#: what prepare found in the image (:class:`ImageMpi`), beside the session folder
IMAGE_MPI_FILE = "image.json"


#: one shell line, run in the image: Open MPI's version, then whether the Python has mpi4py
_PROBE_MPI = (
    "(ompi_info --version || mpirun --version) 2>/dev/null | head -n 1; echo; "
    '"$0" -c \'import importlib.util as u; print(u.find_spec("mpi4py") is not None)\' '
    "2>/dev/null || true"
)


def image_mpi(engine: str, image_id: str, python: str, cache: Path) -> ImageMpi:
    """What the image ``image_id`` holds for MPI ranks: asked with one short container (about
    a second), the answer kept in ``cache`` by the image's id (its content's hash)."""
    known = cache / f"{image_id.removeprefix('sha256:')}.json"
    try:
        return ImageMpi(**json.loads(known.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    found = _probe_image_mpi(engine, image_id, python)
    cache.mkdir(parents=True, exist_ok=True)
    write_json(str(known), asdict(found))
    return found


def _probe_image_mpi(engine: str, image_id: str, python: str) -> ImageMpi:
    from ferry.envbuild.docker_engine import client

    engine_client = client(engine)
    try:
        said = engine_client.containers.run(
            image_id, ["-c", _PROBE_MPI, python], entrypoint="/bin/sh", remove=True,
            network_mode="none", stderr=False,
        )  # fmt: skip
    except Exception as exc:  # the docker library's errors: no shell in the image, say
        raise TargetRefused(
            f"cannot look into the image {image_id} for Open MPI ({exc}); an MPI job's image needs "
            "a shell (/bin/sh) and Open MPI"
        ) from exc
    finally:
        engine_client.close()
    lines = said.decode("utf-8", "replace").splitlines()
    version = lines[0].strip() if lines else ""
    return ImageMpi(version if "Open MPI" in version or "OpenRTE" in version else "",
                    bool(lines) and lines[-1].strip() == "True")  # fmt: skip


def check_image_mpi(
    tag: str,
    host_version: str,
    found: ImageMpi,
    *,
    environment: str,
    run_id: str | None,
    where: str = "this machine",
) -> None:
    """Refuse an MPI job whose image has no Open MPI, or another series than the mpirun of
    ``where`` (which starts the ranks, and to which their library connects)."""
    from ferry.targets import mpi

    wanted = mpi.series(host_version) or host_version
    fix = (
        "use ferry's default base image (leave env.docker.base_image unset: it has Debian's "
        f"Open MPI), or install Open MPI {wanted} in the image (on Debian or Ubuntu: "
        f"apt-get install openmpi-bin, of version {wanted}.x like {where}'s {host_version})"
    )
    name = environment or "(unnamed)"
    if not found.version:
        raise TargetRefused(
            f"the MPI job's ranks run in the image of environment {name!r} ({tag}), started by "
            f"{where}'s mpirun ({host_version}), and that image has no Open MPI: {fix}",
            run_id=run_id,
        )
    if mpi.series(found.version) != mpi.series(host_version):
        raise TargetRefused(
            f"the image of environment {name!r} ({tag}) has {found.version}, and {where}'s "
            f"mpirun, which starts the ranks, is {host_version}: the two must be the same "
            f"series; {fix}",
            run_id=run_id,
        )


def container_name(run_id: str, rank: int) -> str:
    return f"{rank_name_prefix(run_id)}{rank}"


def rank_name_prefix(run_id: str) -> str:
    """What the names of a run's rank containers start with (``ferry-<run id>-``)."""
    return f"ferry-{run_id}-"


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


@dataclass(frozen=True)
class ContainerPlan:
    """What every rank's container of one run shares, built once by the target: the image on
    ``engine``, the job's ``command`` inside, the ``variables`` it sees (the protocol's, the
    environment's, the run's), the folders mounted (path, read-only), the working folder, the
    account (``uid:gid``), GPUs, and Docker's client with its own environment (``base_env``)
    on the machine that runs it."""

    image: str
    engine: str
    command: list[str]
    variables: dict[str, str]
    mounts: list[tuple[str, bool]]
    workdir: str
    user: str
    gpus: bool
    base_env: dict[str, str]
    docker: str = "docker"


def rank_launch(
    job: JobSpec, plan: ContainerPlan, rank: int, extra: Mapping[str, str] | None = None
) -> RankContainer:
    """The client's command line and environment for one rank (see the module docstring);
    ``extra`` are the rank's own variables."""
    if job.distributed is not None and job.distributed.kind == "mpi":
        raise TargetRefused(  # each container would be an MPI world of one: wrong, silently
            "an MPI job's ranks in containers are started by mpirun (mpi_launch), not one by "
            "one; this target does not start them so: use a plain environment for MPI",
            run_id=job.run_id,
        )
    name = container_name(job.run_id, rank)
    variables = {**plan.variables, **(extra or {})}
    inline = {} if "HOME" in variables else {"HOME": "/tmp"}
    argv = container.run_argv(
        {
            **_run_options(job, plan, sorted(variables), inline),
            "name": name,
            "labels": {"ferry.run": job.run_id, "ferry.rank": str(rank)},
            # one stream: the engine reads stdout and stderr through two pipes and loses their
            # order (a traceback would land before the lines printed ahead of it)
            "command": ["/bin/sh", "-c", 'exec "$@" 2>&1', "ferry-job", *plan.command],
        }
    )
    env = {**plan.base_env, **variables, "DOCKER_HOST": plan.engine}
    return RankContainer(argv, env, name, {"engine": plan.engine, "name": name})


def _run_options(
    job: JobSpec, plan: ContainerPlan, names: list[str], inline: dict[str, str]
) -> dict[str, Any]:
    return {
        "docker": plan.docker,
        "image": plan.image,
        "user": plan.user,
        "workdir": plan.workdir,
        "mounts": [[path, read_only] for path, read_only in plan.mounts],
        "env_names": names,
        "env": inline,
        "shm_size": job.environment.docker.shm_size,
        "gpus": plan.gpus,
        "arguments": list(job.environment.docker.arguments),
    }


def mpi_box(job: JobSpec, plan: ContainerPlan, shared: Mapping[str, str]) -> dict[str, Any]:
    """What each rank started by mpirun runs (:func:`ferry.agent.mpi_rank.in_container`):
    Docker's command line before (``head``) and after (``tail``) the rank's own name, label
    and MPI variables, and the names' prefix (``ferry-<run id>-``). ``shared`` are the
    variables every rank sees alike (:func:`ferry.targets.distributed.shared_environment`)."""
    seen = {**plan.variables, **shared}
    inline = {} if "HOME" in seen else {"HOME": "/tmp"}
    whole = container.run_argv(
        {
            **_run_options(job, plan, sorted(seen), inline),
            "labels": {"ferry.run": job.run_id},
            "command": ["/bin/sh", "-c", 'exec "$@" 2>&1', "ferry-job"],
        }
    )
    cut = len(whole) - 5  # the image, then the four words of the wrapper
    return {"head": whole[:cut], "tail": whole[cut:], "name": rank_name_prefix(job.run_id)}


def mpi_launch(job: JobSpec, mpirun: OpenMpi, plan: ContainerPlan) -> RankContainer:
    """The one process the watchdog starts for an MPI run in containers on this machine: its
    ``mpirun``, whose ranks each run Docker's client for a container of their own (see the
    module docstring; ``python -m mpi4py`` is put before a script when the image has it)."""
    from ferry.agent.mpirun import launch
    from ferry.targets import distributed, mpi

    assert job.distributed is not None
    host = "127.0.0.1"
    shared = distributed.shared_environment(job.distributed, host, distributed.free_port(host))
    box = mpi_box(job, plan, shared)
    spec = mpi.launch_spec(
        job, mpirun, plan.command, str(job.run_dir), logs=str(job.log_path.parent),
        mpi4py=_prepared_mpi4py(job), container=box, session=str(session_dir(job)),
        image=plan.image,
    )  # fmt: skip
    argv, first = launch(spec, {})
    env = {**plan.base_env, **plan.variables, **shared, "DOCKER_HOST": plan.engine}
    name = str(box["name"]) + "*"
    return RankContainer(argv, env, name, {"engine": plan.engine, "name": name}, first)


def _prepared_mpi4py(job: JobSpec) -> bool:
    """Whether prepare found mpi4py in the image (False when it did not say)."""
    try:
        found = json.loads((session_dir(job) / IMAGE_MPI_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(found.get("mpi4py")) if isinstance(found, dict) else False


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
