"""The ``spark-submit`` command line of one run (pure: no process, no file).

The target's Spark settings come first and the run configuration's ``spark.configuration`` wins
over them; the environment's Spark packages become ``--packages``; the driver always runs here
(``--deploy-mode client``) so its log and metrics flow like any run's.

Example::

    argv = spark_submit_argv(SparkSubmit(
        executable="/opt/spark/bin/spark-submit", master="local[2]",
        conf={"spark.sql.shuffle.partitions": "4"}, packages=["org.x:y_2.13:1.0"],
        repositories=[], script="train.py", arguments=["--alpha", "0.5"]))
    # ['/opt/spark/bin/spark-submit', '--master', 'local[2]', '--deploy-mode', 'client',
    #  '--conf', 'spark.sql.shuffle.partitions=4', '--packages', 'org.x:y_2.13:1.0',
    #  'train.py', '--alpha', '0.5']
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferry.errors import TargetError, TargetRefused
from ferry.spec import JobSpec
from ferry.targets.spark.config import ENV_REF, conf_value, validate_conf

FRAMEWORK = "PySpark"
_MASK = "***"


@dataclass(frozen=True)
class SparkSubmit:
    """Everything that goes on a spark-submit command line."""

    executable: str
    master: str
    script: str
    arguments: list[str] = field(default_factory=list)
    conf: Mapping[str, str] = field(default_factory=dict)
    packages: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)


def check_job(job: JobSpec, target: str) -> str:
    """The script a Spark target runs; a TargetRefused says what to change for other jobs."""
    if job.framework.lower() != FRAMEWORK.lower():
        raise TargetRefused(
            f"the compute target {target!r} is a Spark target and runs PySpark jobs through "
            f"spark-submit, but this run's framework is {job.framework!r}; set "
            "framework='pyspark' (RunConfiguration(framework='pyspark'), or `framework: pyspark` "
            "in a job file), or submit it to another target",
            run_id=job.run_id,
            target=target,
        )
    if job.command.kind != "script":
        raise TargetRefused(
            f"the Spark target {target!r} runs a script with spark-submit, not a command; "
            "give script= (and arguments=) instead of command=",
            run_id=job.run_id,
            target=target,
        )
    return job.command.script


def job_conf(
    target_conf: Mapping[str, Any], run_conf: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, str], set[str]]:
    """Merged Spark settings (the run's win) with ``${env:NAME}`` references expanded.

    Returns the settings and the names of those whose value came from the environment, so
    that a command line shown to people can hide them.
    """
    merged = dict(validate_conf(target_conf, "the target's conf"))
    merged.update(
        {str(k): conf_value(v) for k, v in run_conf.items() if v is not None},
    )
    secret = {key for key, value in merged.items() if ENV_REF.search(value)}
    return {key: _expand(key, value, environ) for key, value in merged.items()}, secret


def _expand(key: str, value: str, environ: Mapping[str, str]) -> str:
    def lookup(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in environ:
            raise TargetError(
                f"the Spark setting {key!r} refers to ${{env:{name}}}, but {name} is not set; "
                "export it where runs are started (or in the run's environment_variables)"
            )
        return environ[name]

    return ENV_REF.sub(lookup, value)


def spark_submit_argv(job: SparkSubmit) -> list[str]:
    """The spark-submit command line (client mode: the driver runs on this machine)."""
    argv = [job.executable, "--master", job.master, "--deploy-mode", "client"]
    for key, value in job.conf.items():
        argv += ["--conf", f"{key}={value}"]
    if job.packages:
        argv += ["--packages", ",".join(job.packages)]
    if job.repositories:
        argv += ["--repositories", ",".join(job.repositories)]
    return [*argv, job.script, *job.arguments]


def shown(argv: list[str], secret_keys: set[str]) -> str:
    """The command line for people (the run's log): settings from the environment masked."""
    out = []
    for i, arg in enumerate(argv):
        key = arg.partition("=")[0]
        if i > 0 and argv[i - 1] == "--conf" and key in secret_keys:
            arg = f"{key}={_MASK}"
        out.append(shlex.quote(arg))
    return " ".join(out)
