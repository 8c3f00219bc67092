"""Docker runs on an SSH host: the image on the host's engine, the ranks as containers there.

The host's engine is the one Docker's clients find there (the agent reports its
``DOCKER_HOST``, else the default socket), or the target's ``docker_host`` setting. Before
anything is built the agent checks it answers and that Docker's client is installed there
(``docker_check``: the message says how to start one). The image is found or built exactly as on
this machine (:func:`ferry.envbuild.docker_build.ensure_image`, the ``docker`` library), through
the engine's socket forwarded over the run's SSH connection — a build context, a base image
made here from Debian's packages and uv travel over it; the host needs nothing but the engine.
The ranks then run as on the local target (:mod:`ferry.targets.container`): Docker's client
under the job's watchdog on the host, which stops the containers through the engine when the
job is cancelled, runs out of time or loses its supervisor. An MPI run is the host's ``mpirun``
under the watchdog, each rank it starts Docker's client for a container of its own
(:func:`ferry.targets.container.mpi_box`); the image must hold the host's Open MPI series.

Example::

    docker = RemoteDocker(run)
    prepared = await docker.prepare(ctx)
    request = docker.launch_request(runtime_dir)
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ferry.errors import TargetRefused
from ferry.spec import PrepareContext
from ferry.targets import container, distributed
from ferry.targets.base import Prepared
from ferry.targets.jobenv import job_request

if TYPE_CHECKING:
    from ferry.envbuild.docker_build import DockerImage
    from ferry.targets.ssh.remote_run import RemoteRun


class RemoteDocker:
    """The Docker side of one run on a host."""

    def __init__(self, run: RemoteRun) -> None:
        self.run = run
        self.engine = ""
        self.image: DockerImage | None = None
        self.mpi4py = False  # an MPI run: the image's Python has mpi4py

    def _check_image_mpi(self, engine: str) -> None:
        """An MPI run: the image must hold the host's Open MPI series (its mpirun starts the
        ranks); whether its Python has mpi4py decides how a script runs."""
        run = self.run
        assert self.image is not None and run.mpirun is not None
        cache = run.workspace.envs_dir / "docker-mpi"
        found = container.image_mpi(engine, self.image.image_id, self.image.python, cache)
        container.check_image_mpi(
            self.image.tag, run.mpirun.version, found, environment=run.job.environment.name,
            run_id=run.job.run_id, where=f"host {run.settings.where}",
        )  # fmt: skip
        self.mpi4py = found.mpi4py

    async def prepare(self, ctx: PrepareContext) -> Prepared:
        from ferry.envbuild.docker_build import ensure_image

        run = self.run
        assert run.session is not None and run.conn is not None
        hello = run.session.hello
        self.engine = run.settings.docker_host or str(hello.get("docker_host") or "")
        checked = await run.call("docker_check", engine=self.engine)
        where = urlparse(self.engine)
        if where.scheme != "unix":
            raise TargetRefused(
                f"the Docker engine on {run.settings.where} is {self.engine}; ferry reaches a "
                "host's engine through its unix:// socket over SSH: set docker_host on the "
                "target to that socket",
                run_id=run.job.run_id,
                target=run.name,
            )
        ctx.log(
            f"ferry: {run.settings.where}: Docker engine {checked.get('version')} at {self.engine}"
        )
        local = os.path.join(tempfile.gettempdir(), f"ferry-docker-{uuid.uuid4().hex[:12]}.sock")
        listener = await run.conn.forward_local_path(local, where.path)
        try:
            loop = asyncio.get_running_loop()
            job, envs = run.job, run.workspace.envs_dir
            self.image = await loop.run_in_executor(
                None,
                lambda: ensure_image(
                    job.environment,
                    f"unix://{local}",
                    log=ctx.log,
                    lock_dir=envs,
                    cancelled=ctx.cancelled,
                ),
            )
            if run.mpirun is not None:
                await loop.run_in_executor(None, self._check_image_mpi, f"unix://{local}")
        finally:
            listener.close()
            try:
                os.unlink(local)
            except OSError:
                pass
        return Prepared(env_hash=self.image.spec_hash, env_lock=self.image.lock)

    def _data_mounts(self) -> list[tuple[str, bool]]:
        """The host's shared dataset copies (read-only) and dataset folders given outside the
        run's folder, for a job with datasets."""
        run = self.run
        if not run.job.inputs and not run.job.outputs:
            return []
        assert run.session is not None
        mounts = [(f"{run.session.work_dir}/data", True)]
        mounts += [(path, False) for path in run.data_paths]
        return mounts

    def launch_request(self, runtime_dir: str, port: int | None) -> dict[str, Any]:
        """The agent's ``launch`` request: every rank's client command line and container (an
        MPI job: one mpirun on the host, one container per rank it starts)."""
        run = self.run
        assert run.session is not None and self.image is not None
        hello, job = run.session.hello, run.job
        workdir = f"{run.run_dir}/wd"
        request = job_request(job, run_dir=run.run_dir, workdir=workdir, runtime_path=runtime_dir)
        variables = {**request["set"], **run.data_variables(), "PYTHONPATH": runtime_dir}
        plan = container.ContainerPlan(
            image=self.image.tag,
            engine=self.engine,
            command=run.data_argv(job.command.argv(self.image.python)),
            variables=variables,
            mounts=[(run.run_dir, False), (runtime_dir, True), *self._data_mounts()],
            workdir=workdir,
            user=f"{hello.get('uid', os.getuid())}:{hello.get('gid', os.getgid())}",
            gpus=container.wants_gpus(job) and bool(hello.get("gpus")),
            base_env={},
        )
        distributed_plan = job.distributed
        if run.mpirun is not None:
            assert distributed_plan is not None and port is not None
            ranks = [self._mpi_rank(plan, distributed.shared_environment(
                distributed_plan, "127.0.0.1", port))]  # fmt: skip
        else:
            slots: list[tuple[int, dict[str, str]]] = [(0, {})]
            if distributed_plan is not None:
                assert port is not None
                slots = [
                    (s.rank, distributed.rank_environment(distributed_plan, s, "127.0.0.1", port))
                    for s in distributed_plan.slots()
                ]
            ranks = []
            for rank, extra in slots:
                box = container.rank_launch(job, plan, rank, extra)
                ranks.append({"rank": rank, "set": extra, "argv": box.argv, "container": box.stop})
        return {
            "argv": ranks[0]["argv"],
            "set": {**variables, "DOCKER_HOST": self.engine},
            "prepend": {},
            "unset": request["unset"],
            "ranks": ranks,
        }

    def _mpi_rank(self, plan: container.ContainerPlan, shared: dict[str, str]) -> dict[str, Any]:
        """The one process of an MPI run in containers: the host's mpirun (its command line is
        made there, :func:`ferry.agent.mpirun.launch`), each rank Docker's client for its own
        container; the watchdog stops them all by the name ``ferry-<run id>-*``."""
        from ferry.targets import mpi

        run = self.run
        assert run.mpirun is not None
        box = container.mpi_box(run.job, plan, shared)
        spec = mpi.launch_spec(
            run.job, run.mpirun, plan.command, run.run_dir, container=box,
            session=f"{run.run_dir}/mpi", image=plan.image, mpi4py=self.mpi4py,
        )  # fmt: skip
        name = str(box["name"]) + "*"
        stop = {"engine": self.engine, "name": name}
        return {"rank": 0, "set": shared, "argv": ["mpirun"], "container": stop, "mpi": spec}
