"""The seam between the public API and the machinery: plain, typed, frozen data.

The public classes (``Environment``, ``ScriptRunConfig``, ``RunConfiguration`` …) *produce* these;
the machinery (``envbuild/``, ``targets/``, the supervisor) *consumes* them and never sees a public
class. Nothing here imports the rest of ferry, so every room can be tested with a few literals::

    env = EnvironmentSpec(name="sk", pip=("scikit-learn==1.5.2",))
    job = JobSpec(run_id="exp_1_ab12cd34", experiment="exp", target="local",
                  paths=RunPaths(Path("/ws/runs/exp_1_ab12cd34")),
                  command=JobCommand.script("train.py", ("--alpha", "0.5")), environment=env)

The stored run definition keeps the reference's camelCase shape (``runDefinition``); it is turned
into a :class:`JobSpec` in one place, :func:`ferry.jobdef.job_spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from ferry.snapshot.blobstore.local import LocalBlobStore
    from ferry.tracking.base import RunStore


# environments ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildContextSpec:
    """A Docker build context folder (``Environment.from_docker_build_context``): where it is on
    the submitting machine, its Dockerfile's path inside it, and the digest of its files taken at
    submit (part of the environment's hash; a build checks the folder still has it)."""

    location: str
    dockerfile: str = "Dockerfile"
    digest: str = ""


@dataclass(frozen=True)
class DockerSpec:
    """The reference's Docker section (``env.docker``), merged with the run's
    ``DockerConfiguration`` by :func:`ferry.jobdef.job_spec`.

    ``enabled`` asks for a container. ``by_habit`` is set instead when Docker was asked for
    without an image, a Dockerfile or a build context (the reference's notebooks set
    ``docker.enabled`` by habit): targets that run containers (local, ssh) use ferry's default
    base image, the others run a plain environment and say so. ``base_image``,
    ``base_dockerfile`` (its text) and ``build_context`` are exclusive; ``registry`` is the
    address and user of the base image's registry (the password is never recorded: ferry
    pulls with Docker's stored credentials, ``docker login``). ``platform`` is
    ``os/architecture``. ``arguments``, ``shm_size`` and ``shared_volumes`` shape the
    container at run time and are not part of the image's hash.
    """

    enabled: bool = False
    base_image: str | None = None
    base_dockerfile: str | None = None
    arguments: tuple[str, ...] = ()
    build_context: BuildContextSpec | None = None
    registry: str | None = None
    registry_user: str | None = None
    platform: str = "linux/amd64"
    shm_size: str = "2g"
    shared_volumes: bool = True
    by_habit: bool = False

    @property
    def wanted(self) -> bool:
        """A container is asked for (an explicit image, or Docker by habit)."""
        return self.enabled or self.by_habit

    @property
    def explicit(self) -> bool:
        """An image, a Dockerfile or a build context is named."""
        return bool(self.base_image or self.base_dockerfile or self.build_context)


@dataclass(frozen=True)
class EnvironmentSpec:
    """What a target needs to provide the software of a run.

    ``user_managed`` runs with an existing interpreter: ``interpreter`` (None means *the
    target's default*: the interpreter running ferry locally, ``python3`` on an SSH host, the
    node's Python on Ray). Otherwise ferry builds it from ``python`` (a version, None = the
    target's) and the packages. ``variables`` are set for the job.
    """

    name: str = "default"
    version: int | None = None
    user_managed: bool = True
    interpreter: str | None = None
    python: str | None = None
    pip: tuple[str, ...] = ()
    pip_options: tuple[str, ...] = ()
    conda: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    base_conda_environment: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    docker: DockerSpec = DockerSpec()
    spark_repositories: tuple[str, ...] = ()
    spark_packages: tuple[str, ...] = ()  # "group:artifact:version"
    spark_precache: bool = True

    def canonical(self, *, default_python: str, platform: str, recipe: str) -> dict[str, Any]:
        """The parts that decide what gets installed, in one canonical form (the hash input)."""
        from ferry.envbuild.spechash import canonical_spec

        return canonical_spec(self, default_python=default_python, platform=platform, recipe=recipe)


# jobs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobCommand:
    """The job's command, resolved: ``python script args…``, an argv, or a shell line."""

    kind: Literal["script", "argv", "shell"]
    script: str = ""
    arguments: tuple[str, ...] = ()
    argv_: tuple[str, ...] = ()
    shell: str = ""

    @classmethod
    def of_script(cls, script: str, arguments: tuple[str, ...] = ()) -> JobCommand:
        return cls("script", script=script, arguments=arguments)

    def argv(self, python: str) -> list[str]:
        """The command line, given the interpreter the environment resolved to."""
        if self.kind == "argv":
            return list(self.argv_)
        if self.kind == "shell":
            return ["/bin/sh", "-c", self.shell]
        return [python, self.script, *self.arguments]


@dataclass(frozen=True)
class DistributedPlan:
    """How many nodes, how many processes on each, and which launcher family."""

    kind: str  # "pytorch" or "mpi"
    node_count: int
    processes_per_node: int
    backend: str | None = None  # "nccl" or "gloo" for the PyTorch form

    @property
    def world_size(self) -> int:
        return self.node_count * self.processes_per_node

    def slots(self) -> list[RankSlot]:
        """Every rank's place, node-major."""
        per = self.processes_per_node
        return [
            RankSlot(rank=node * per + local, node_rank=node, local_rank=local)
            for node in range(self.node_count)
            for local in range(per)
        ]

    def describe(self) -> str:
        what = f"{self.kind} ({self.backend})" if self.backend else self.kind
        return (
            f"{what}: {self.node_count} node(s) × {self.processes_per_node} process(es) = "
            f"{self.world_size} rank(s)"
        )


@dataclass(frozen=True)
class RankSlot:
    rank: int
    node_rank: int
    local_rank: int


@dataclass(frozen=True)
class RunPaths:
    """Every file of a run's folder on the machine that drives it — the one place that spells
    them (submitit's ``JobPaths``)."""

    run_dir: Path

    @property
    def log(self) -> Path:
        return self.run_dir / "user_logs" / "std_log.txt"

    def rank_log(self, rank: int) -> Path:
        """Rank 0's log is the main log; the others sit beside it."""
        return self.log if rank == 0 else self.run_dir / "user_logs" / f"std_log_rank_{rank}.txt"

    @property
    def spool(self) -> Path:
        return self.run_dir / "spool"

    @property
    def artifacts(self) -> Path:
        return self.run_dir / "artifacts"

    @property
    def workdir(self) -> Path:
        """The materialised snapshot the job runs in (local targets)."""
        return self.run_dir / "wd"

    @property
    def done(self) -> Path:
        """Touched by the supervisor when it has finished (followers stop)."""
        return self.run_dir / "done"

    @property
    def cancel(self) -> Path:
        """Touched by ``Run.cancel()`` (the supervisor also reads the status)."""
        return self.run_dir / "cancel"

    @property
    def exit(self) -> Path:
        """The job watchdog's result (``exit.json``)."""
        return self.run_dir / "exit.json"

    @property
    def supervisor_log(self) -> Path:
        return self.run_dir / "supervisor.log"

    @property
    def watchdog_log(self) -> Path:
        return self.run_dir / "watchdog.log"


@dataclass(frozen=True)
class DataInputSpec:
    """A dataset version the job reads, under ``name``: how it is delivered (``mount`` is a
    read-only view, ``download`` a writable copy, ``direct`` a tabular dataset's files with how
    to read them), where (``path_on_compute``: absolute, relative to the working folder, or
    None for the target's choice) and which argument text stands for its path."""

    name: str
    dataset_id: str
    manifest_id: str
    mechanism: Literal["mount", "download", "direct"] = "mount"
    path_on_compute: str | None = None
    single_file: str | None = None  # the dataset path of its only file (given as the path)
    kind: str = "file"
    tabular: Mapping[str, Any] | None = None  # {"format": …, "transforms": […]} when tabular
    placeholder: str = ""
    label: str = ""  # "name:version" of a registered version, else the id


@dataclass(frozen=True)
class DataOutputSpec:
    """A folder the job writes, uploaded to ``datastore``/``destination`` and saved as a
    dataset version (registered as ``register_name`` when set) when the run completes."""

    name: str
    datastore: str
    destination: str
    mechanism: Literal["mount", "upload"] = "mount"
    path_on_compute: str | None = None
    overwrite: bool = False
    register_name: str | None = None
    description: str | None = None
    tags: Mapping[str, str | None] = field(default_factory=dict)
    tabular: Mapping[str, Any] | None = None  # the format, for a tabular output
    placeholder: str = ""


@dataclass(frozen=True)
class JobSpec:
    """Everything a target needs to run one job, parsed and checked once."""

    run_id: str
    experiment: str
    target: str
    paths: RunPaths
    command: JobCommand
    environment: EnvironmentSpec = EnvironmentSpec()
    parent_run_id: str | None = None
    snapshot_id: str | None = None
    source_dir: Path | None = None
    env_vars: Mapping[str, str] = field(default_factory=dict)  # the run's environment_variables
    max_duration: float | None = None  # max_run_duration_seconds
    distributed: DistributedPlan | None = None
    node_count: int = 1
    framework: str = "Python"
    spark_conf: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)
    watched_dirs: tuple[str, ...] = ("logs",)  # history.directories_to_watch, job-relative
    collect_outputs: bool = True  # history.output_collection
    notes: tuple[str, ...] = ()  # settings recorded but not acted on (said in the run's log)
    inputs: tuple[DataInputSpec, ...] = ()  # datasets the job reads
    outputs: tuple[DataOutputSpec, ...] = ()  # folders it writes that become datasets

    @property
    def run_dir(self) -> Path:
        return self.paths.run_dir

    @property
    def log_path(self) -> Path:
        return self.paths.log

    @property
    def spool_dir(self) -> Path:
        return self.paths.spool


# services and contexts -------------------------------------------------------------------------
class WorkspaceServices(Protocol):
    """What the machinery uses of a workspace: its store, its blobs and its folders."""

    @property
    def path(self) -> Path: ...

    @property
    def store(self) -> RunStore: ...

    @property
    def blobs(self) -> LocalBlobStore: ...

    @property
    def runs_dir(self) -> Path: ...

    @property
    def envs_dir(self) -> Path: ...

    @property
    def cache_dir(self) -> Path: ...


class PrepareContext(Protocol):
    """What a target's ``prepare`` reports to, and asks: log lines, waiting, cancellation."""

    def log(self, line: str) -> None:
        """A line of ferry's own in the run's log."""

    def waiting(self, reason: str) -> None:
        """The run waits for resources: shown Queued with ``reason``."""

    def resumed(self) -> None:
        """The wait is over: back to Preparing."""

    def cancelled(self) -> bool:
        """True once the run should stop (cancel, or ended from outside)."""
