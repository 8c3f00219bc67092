"""The Spark target: a local run whose command is spark-submit.

Everything else is the local target's: the snapshot is materialised in the run folder, the
environment is resolved here, the driver (client mode) writes the log and the spool straight into
the run folder, ./outputs and ./logs are collected from the working copy. The job runs under the
local target's watchdog (:mod:`ferry.agent.watchdog`), which answers for every process it starts,
so a cancel, a time limit or the supervisor's death stops the whole Spark application:
spark-submit's JVM, the Python driver, pyspark's worker daemon and its Python workers.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferry.errors import TargetError, TargetRefused
from ferry.spec import JobSpec, PrepareContext, WorkspaceServices
from ferry.targets.base import Prepared, Started
from ferry.targets.local import LocalTarget
from ferry.targets.spark import installation
from ferry.targets.spark.command import (
    SparkSubmit,
    check_job,
    job_conf,
    shown,
    spark_submit_argv,
)
from ferry.targets.spark.config import (
    DEFAULT_LOG_LEVEL,
    KIND,
    is_loopback_master,
    master_hosts,
    validate_config,
)


class SparkTarget(LocalTarget):
    """Runs ``framework="pyspark"`` jobs with spark-submit, the driver on this machine.

    Example::

        ComputeTarget.attach(ws, "spark", SparkCompute.attach_configuration(master="local[2]"))
        rc = RunConfiguration(framework="pyspark")
        rc.target = "spark"
        rc.spark.configuration["spark.sql.shuffle.partitions"] = 4
        run = exp.submit(ScriptRunConfig("src", "train-spark.py", run_config=rc))
    """

    kind = KIND

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        super().__init__(name, config, workspace)
        self._script = ""
        self._home: Path | None = None
        self._scratch: Path | None = None

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        check_job(job, name)
        if job.environment.docker.enabled:
            image = job.environment.docker.base_image or "a Dockerfile"
            raise TargetRefused(
                f"the environment asks for Docker ({image}); the spark target runs spark-submit "
                "without containers: run it on the local or an ssh target, or set "
                "env.docker.enabled = False",
                run_id=job.run_id,
                target=name,
            )
        super().check_job(name, _plain(job))

    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        if job.environment.docker.wanted:  # by habit (an image is refused at submit): plain
            ctx.log("ferry: Docker was asked for by habit; the spark target runs it plain")
            job = _plain(job)
        self._script = check_job(job, self.name)
        self._home = installation.spark_home(self.config)
        installation.find_java({**os.environ, **job.environment.variables, **job.env_vars})
        prepared = super().prepare(job, ctx)
        self._check_python()
        return prepared

    def _check_python(self) -> None:
        assert self._home is not None and self._python is not None
        needed = installation.python_requirement(self._home)
        have = installation.python_version(self._python) if needed else None
        if needed and have and have < needed:
            want, got = ".".join(map(str, needed)), ".".join(map(str, have))
            raise TargetError(
                f"Spark {installation.spark_version(self._home)} needs Python {want} or newer "
                f"in the run's environment, and {self._python} is Python {got}; ask for a newer "
                f"Python in the environment (e.g. conda_dependencies python={want})"
            )

    def start(self, job: JobSpec) -> Started:
        argv, env, secret = self.command(job)
        return self._start_job(job, argv, env, first_line=f"ferry: {shown(argv, secret)}\n")

    def command(self, job: JobSpec) -> tuple[list[str], dict[str, str], set[str]]:
        """After :meth:`prepare`: the spark-submit command line, its environment, and the
        names of the Spark settings whose values came from the environment (not to be shown)."""
        from ferry.runtime.layout import build_runtime_path

        assert self._workdir is not None and self._python is not None
        runtime_path = build_runtime_path(self.workspace.path / "runtime")
        env = self.job_environment(job, runtime_path)
        self._spark_environment(job, env)
        conf, secret = job_conf(self.config.get("conf") or {}, self._run_conf(job), env)
        return spark_submit_argv(self._submit(job, conf)), env, secret

    # the parts that differ from a local run ---------------------------------------------------
    def _run_conf(self, job: JobSpec) -> Mapping[str, Any]:
        return dict(job.spark_conf)

    def _submit(self, job: JobSpec, conf: Mapping[str, str]) -> SparkSubmit:
        assert self._home is not None
        return SparkSubmit(
            executable=installation.spark_submit(self._home),
            master=str(self.config.get("master") or "local[*]"),
            script=self._script,
            arguments=list(job.command.arguments),
            conf=conf,
            packages=list(job.environment.spark_packages),
            repositories=list(job.environment.spark_repositories),
        )

    def _spark_environment(self, job: JobSpec, env: dict[str, str]) -> None:
        """SPARK_HOME, the job's interpreter for the driver and workers, quiet Spark logging."""
        assert self._home is not None and self._python is not None
        env["SPARK_HOME"] = str(self._home)
        chosen = {**self._env_vars, **job.env_vars}
        for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
            env[name] = chosen.get(name) or self._python
        master = str(self.config.get("master") or "")
        if is_loopback_master(master) and "SPARK_LOCAL_IP" not in env:
            # the whole application is on this machine: keep its ports off the network
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
        if "SPARK_LOCAL_DIRS" not in env and "," not in str(job.run_dir):
            # Spark's scratch space goes with the run, removed even after a KILL
            self._scratch = job.run_dir / "spark" / "scratch"
            self._scratch.mkdir(parents=True, exist_ok=True)
            env["SPARK_LOCAL_DIRS"] = str(self._scratch)
        if not installation.has_log_config(self._home, env):
            level = str(self.config.get("log_level") or DEFAULT_LOG_LEVEL)
            props = job.run_dir / "spark" / "log4j2.properties"
            props.parent.mkdir(parents=True, exist_ok=True)
            props.write_text(installation.log4j2_properties(level), encoding="utf-8")
            opts = env.get("SPARK_SUBMIT_OPTS", "")
            env["SPARK_SUBMIT_OPTS"] = f"-Dlog4j2.configurationFile={props.as_uri()} {opts}".strip()

    def close(self) -> None:
        super().close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    # what the target reports about itself -----------------------------------------------------
    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        report: dict[str, Any] = {"name": name, "kind": cls.kind, "master": config.get("master")}
        try:
            home = installation.spark_home(config)
            report["spark_home"] = str(home)
            report["spark_version"] = installation.spark_version(home)
        except TargetError as exc:
            report["spark"] = f"missing: {exc}"
        try:
            report["java"] = installation.java_version(installation.find_java(os.environ))
        except TargetError as exc:
            report["java"] = f"missing: {exc}"
        for host, port in master_hosts(str(config.get("master") or "")):
            report[f"master {host}:{port}"] = _reachable(host, port)
        return report

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return validate_config(config)


def _reachable(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=3):
            return "reachable"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"


def _plain(job: JobSpec) -> JobSpec:
    """The job with its environment run plain (spark-submit starts no containers)."""
    from dataclasses import replace

    from ferry.targets.container import without_docker

    return replace(job, environment=without_docker(job.environment))
