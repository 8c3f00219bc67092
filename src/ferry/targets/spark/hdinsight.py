"""The ``hdinsight`` target: ``spark-submit`` on a Spark cluster's head node reached over SSH.

As the reference's HDInsight target, a run whose framework is ``pyspark`` is submitted on the
cluster's head node. Everything else is the SSH target's: the snapshot and the runtime go to the
head by blob (only what it lacks), the environment is resolved or built there, the job runs
under ferry's watchdog, and the driver's log, spool, ``./logs`` and ``./outputs`` come back live.
The driver runs on the head (``--deploy-mode client``), so its output is the run's log; the
head's ``spark-submit`` is ``spark_submit`` (default: the one on the head's PATH) against
``master`` (default ``yarn``, as on HDInsight; ``local[N]`` runs Spark on the head alone).

Example::

    config = HDInsightCompute.attach_configuration(address="head.example.org", ssh_port=22,
                                                   username="sshuser",
                                                   private_key_file="~/.ssh/id_ed25519")
    ComputeTarget.attach(ws, "hdi", config)
    rc = RunConfiguration(framework="pyspark")
    rc.target = "hdi"
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ferry.errors import ConfigError
from ferry.spec import JobCommand, JobSpec, PrepareContext, WorkspaceServices
from ferry.targets.base import Prepared, Started
from ferry.targets.spark.command import (
    SparkSubmit,
    check_job,
    job_conf,
    shown,
    spark_submit_argv,
)
from ferry.targets.spark.config import (
    DEFAULT_LOG_LEVEL,
    LOG_LEVELS,
    is_loopback_master,
    validate_conf,
    validate_master,
)
from ferry.targets.ssh.settings import validate_config as validate_ssh
from ferry.targets.ssh.target import SshTarget

KIND = "hdinsight"
DEFAULT_MASTER = "yarn"
#: the settings of the Spark side; every other setting is the SSH connection's
SPARK_KEYS = ("master", "spark_submit", "spark_home", "conf", "log_level")


def split_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(SSH settings, Spark settings) of an hdinsight configuration."""
    ssh = {k: v for k, v in config.items() if k not in SPARK_KEYS}
    spark = {k: v for k, v in config.items() if k in SPARK_KEYS and v is not None}
    return ssh, spark


def validate_spark(spark: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "master": validate_master(spark.get("master") or DEFAULT_MASTER),
        "spark_submit": str(spark.get("spark_submit") or "spark-submit"),
        "conf": validate_conf(spark.get("conf")),
    }
    level = str(spark.get("log_level") or DEFAULT_LOG_LEVEL).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"log_level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    out["log_level"] = level
    if spark.get("spark_home"):
        out["spark_home"] = str(spark["spark_home"])
    return out


class HDInsightTarget(SshTarget):
    """Runs ``framework="pyspark"`` jobs with spark-submit on a head node (module docstring)."""

    kind = KIND

    def __init__(self, name: str, config: Mapping[str, Any], workspace: WorkspaceServices) -> None:
        ssh, spark = split_config(config)
        super().__init__(name, ssh, workspace)
        self.spark = validate_spark(spark)
        self.config = dict(config)

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        ssh, spark = split_config(config)
        return {**validate_ssh(ssh), **validate_spark(spark)}

    @classmethod
    def check_job(cls, name: str, job: JobSpec) -> None:
        check_job(job, name)  # PySpark scripts only, as the Spark target
        super().check_job(name, job)

    def prepare(self, job: JobSpec, ctx: PrepareContext) -> Prepared:
        check_job(job, self.name)
        return super().prepare(job, ctx)

    def start(self, job: JobSpec) -> Started:
        """The job's command becomes spark-submit on the head, with the environment's
        interpreter as PySpark's (driver and workers)."""
        run = self.remote
        python = run._python  # the head's interpreter for the run, resolved by prepare
        environ = {**os.environ, **job.environment.variables, **job.env_vars}
        # Spark's own log at the target's level unless the run says otherwise (Spark >= 3.5)
        target_conf = {"spark.log.level": self.spark["log_level"], **self.spark["conf"]}
        conf, secret = job_conf(target_conf, dict(job.spark_conf), environ)
        submit = SparkSubmit(
            executable=self.spark["spark_submit"],
            master=self.spark["master"],
            script=job.command.script,
            arguments=list(job.command.arguments),
            conf=conf,
            packages=list(job.environment.spark_packages),
            repositories=list(job.environment.spark_repositories),
        )
        argv = spark_submit_argv(submit)
        extra = {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python}
        if is_loopback_master(self.spark["master"]):
            extra["SPARK_LOCAL_IP"] = "127.0.0.1"  # the whole application is on the head
        if self.spark.get("spark_home"):
            extra["SPARK_HOME"] = self.spark["spark_home"]
        chosen = {**job.environment.variables, **job.env_vars}
        run._environment.update({k: v for k, v in extra.items() if k not in chosen})
        run.sink.note(f"ferry: on {self.settings.where}: {shown(argv, secret)}")
        run.job = replace(job, command=JobCommand("argv", argv_=tuple(argv)))
        return super().start(run.job)

    @classmethod
    def status(
        cls, name: str, config: Mapping[str, Any], workspace: WorkspaceServices
    ) -> dict[str, Any]:
        ssh, spark = split_config(config)
        report = super().status(name, ssh, workspace)
        return {**report, "kind": KIND, "master": spark.get("master") or DEFAULT_MASTER}
