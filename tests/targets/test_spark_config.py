"""Attaching Spark targets and building their spark-submit command line (no Spark job runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ferry import ComputeTarget, Environment, RunConfiguration, ScriptRunConfig, SparkCompute
from ferry.environment import SparkPackage
from ferry.errors import ConfigError, TargetError
from ferry.jobdef import job_spec
from ferry.spec import JobSpec
from ferry.targets.spark import SparkTarget
from ferry.targets.spark.command import (
    SparkSubmit,
    check_job,
    job_conf,
    shown,
    spark_submit_argv,
)
from ferry.targets.spark.config import is_loopback_master, validate_master
from ferry.testing.fake import RecordingContext


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[4]",
        "local[*]",
        "local[2,3]",
        "spark://127.0.0.1:7077",
        "spark://head-0.cluster:7077,head-1.cluster:7077",
        "spark://[::1]:7077",
        "yarn",
        "k8s://https://10.0.0.1:6443",
    ],
)
def test_accepted_master_urls(master: str) -> None:
    assert validate_master(master) == master
    assert SparkCompute.attach_configuration(master=master).to_dict()["master"] == master


@pytest.mark.parametrize(
    "master", ["spark://head", "spark://head:99999", "mesos://h:5050", "local[0]", "local[x]", ""]
)
def test_bad_master_urls_name_the_accepted_forms(master: str) -> None:
    with pytest.raises(ConfigError) as err:
        SparkCompute.attach_configuration(master=master)
    assert "spark://" in str(err.value)


def test_attach_configuration_is_stored_and_looked_up_by_name(workspace) -> None:  # type: ignore[no-untyped-def]
    cfg = SparkCompute.attach_configuration(
        master="local[2]", conf={"spark.sql.shuffle.partitions": 4, "spark.ui.enabled": False}
    )
    assert cfg.kind == "spark"
    assert cfg.to_dict() == {
        "master": "local[2]",
        "conf": {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
        "log_level": "WARN",
    }
    attached = ComputeTarget.attach(workspace, "spark-local", cfg)
    assert attached.type == "spark"
    assert set(workspace.compute_targets) == {"local", "spark-local"}
    assert SparkCompute(workspace, "spark-local").master == "local[2]"
    with pytest.raises(ConfigError, match="not a Spark one"):
        SparkCompute(workspace, "local")
    status = SparkTarget.status("spark-local", attached.config, workspace)
    assert status["spark_version"] and status["java"] and "missing" not in str(status["java"])
    attached.detach()
    assert set(workspace.compute_targets) == {"local"}


def test_secrets_are_refused_unless_they_come_from_the_environment(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"looks like a secret.*\$\{env:MY_VAR\}"):
        SparkCompute.attach_configuration(conf={"spark.authenticate.secret": "hunter2"})
    cfg = SparkCompute.attach_configuration(
        conf={"spark.authenticate.secret": "${env:SPARK_SECRET}"}
    )
    ComputeTarget.attach(workspace, "secure", cfg)
    stored = json.dumps(ComputeTarget(workspace, "secure").serialize())
    assert "${env:SPARK_SECRET}" in stored
    conf, secret = job_conf(
        ComputeTarget(workspace, "secure").config["conf"], {}, {"SPARK_SECRET": "hunter2"}
    )
    assert conf == {"spark.authenticate.secret": "hunter2"} and secret == {
        "spark.authenticate.secret"
    }
    argv = spark_submit_argv(SparkSubmit("spark-submit", "local", "a.py", conf=conf))
    assert "hunter2" not in shown(argv, secret) and "spark.authenticate.secret=***" in shown(
        argv, secret
    )
    with pytest.raises(TargetError, match="SPARK_SECRET is not set"):
        job_conf({"spark.authenticate.secret": "${env:SPARK_SECRET}"}, {}, {})


def test_unknown_settings_and_log_levels_are_named() -> None:
    with pytest.raises(ConfigError, match="allowed: master, conf, spark_home, log_level"):
        SparkTarget.validate_config({"master": "local", "adress": "x"})
    with pytest.raises(ConfigError, match="log_level 'LOUD'"):
        SparkTarget.validate_config({"log_level": "loud"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        SparkTarget.validate_config({"conf": ["spark.a=1"]})


def test_cli_attach_builds_the_same_configuration(workspace, capsys) -> None:  # type: ignore[no-untyped-def]
    from ferry.cli.main import main

    def ferry(*args: str) -> tuple[int, str]:
        try:
            main(["--workspace", str(workspace.path), *args])
        except SystemExit as exc:
            return int(exc.code or 0), capsys.readouterr().out
        return 0, capsys.readouterr().out  # pragma: no cover

    code, out = ferry(
        "target", "attach", "sp", "--type", "spark", "--master", "local[2]",
        "--conf", "spark.sql.shuffle.partitions=3", "--set", "log_level=info",
    )  # fmt: skip
    assert code == 0, out
    code, out = ferry("target", "show", "sp", "--json")
    assert json.loads(out)["config"] == {
        "master": "local[2]",
        "conf": {"spark.sql.shuffle.partitions": "3"},
        "log_level": "INFO",
    }
    code, out = ferry("target", "status", "sp", "--json")
    assert code == 0 and json.loads(out)["kind"] == "spark"
    code, _ = ferry("target", "attach", "bad", "--type", "spark", "--master", "spark://nohost")
    assert code == 2


def test_run_settings_win_over_the_target_and_packages_become_flags() -> None:
    conf, _ = job_conf(
        {"spark.sql.shuffle.partitions": "8", "spark.executor.memory": "1g"},
        {"spark.sql.shuffle.partitions": 2, "spark.yarn.maxAppAttempts": 1},
        {},
    )
    assert conf == {
        "spark.sql.shuffle.partitions": "2",
        "spark.executor.memory": "1g",
        "spark.yarn.maxAppAttempts": "1",
    }
    env = Environment("with-packages")
    env.spark.packages = [SparkPackage("org.example", "thing_2.13", "1.0.0")]
    env.spark.repositories = ["https://repo.example.org/maven"]
    argv = spark_submit_argv(
        SparkSubmit(
            "spark-submit",
            "local[2]",
            "train.py",
            ["--alpha", "0.5"],
            conf,
            list(env.to_spec().spark_packages),
            ["https://repo.example.org/maven"],
        )
    )
    assert argv[:5] == ["spark-submit", "--master", "local[2]", "--deploy-mode", "client"]
    assert argv[argv.index("--packages") + 1] == "org.example:thing_2.13:1.0.0"
    assert argv[argv.index("--repositories") + 1] == "https://repo.example.org/maven"
    assert argv[-3:] == ["train.py", "--alpha", "0.5"]
    bad = Environment("bad")
    bad.spark.packages = [SparkPackage("org.example", "a:b", "1")]
    with pytest.raises(ConfigError, match="group, an artifact and a version"):
        bad.to_spec()


def test_only_pyspark_scripts_are_accepted() -> None:
    with pytest.raises(TargetError, match="framework='pyspark'"):
        check_job(_job({"framework": "Python", "script": "a.py"}), "spark")
    with pytest.raises(TargetError, match="not a command"):
        check_job(_job({"framework": "PySpark", "command": "echo hi"}), "spark")
    assert check_job(_job({"framework": "PySpark", "script": "a.py"}), "spark") == "a.py"


def _job(definition: dict[str, object]) -> JobSpec:
    return job_spec(
        run_id="e_1_abcdef12", experiment="e", target="spark", run_dir=Path("/r"),
        definition=definition,
    )  # fmt: skip


def test_loopback_masters_keep_spark_off_the_network() -> None:
    assert is_loopback_master("local[*]")
    assert is_loopback_master("spark://127.0.0.1:7077,localhost:7078")
    assert not is_loopback_master("spark://10.0.0.4:7077")
    assert not is_loopback_master("yarn")


def test_prepared_run_builds_the_full_command(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """From a real run definition: target conf, run conf, packages, interpreter, runtime path."""
    src = awkward_dir / "src"
    src.mkdir()
    (src / "train.py").write_text("print('hi')\n")
    rc = RunConfiguration(framework="pyspark")
    rc.spark.configuration["spark.sql.shuffle.partitions"] = 2
    rc.environment.spark.packages = [SparkPackage("org.example", "thing_2.13", "1.0.0")]
    config = ScriptRunConfig(str(src), "train.py", arguments=["--alpha", 0.5], run_config=rc)
    definition: dict[str, Any] = config.to_dict()
    target = SparkTarget(
        "sp",
        SparkTarget.validate_config({"master": "local[2]", "conf": {"spark.ui.enabled": "false"}}),
        workspace,
    )
    definition["sourceDirectory"] = str(src)
    job = job_spec(
        run_id="r_1",
        experiment="e",
        target="sp",
        run_dir=workspace.runs_dir / "r_1",
        definition=definition,
    )
    target.prepare(job, RecordingContext())
    argv, env, _ = target.command(job)
    assert argv[argv.index("--packages") + 1] == "org.example:thing_2.13:1.0.0"
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    assert "spark.ui.enabled=false" in confs and "spark.sql.shuffle.partitions=2" in confs
    assert argv[-3:] == ["train.py", "--alpha", "0.5"]
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"]
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert env["PYTHONPATH"].split(":")[0].rsplit("/", 1)[-1].startswith("runtime-")
    assert "log4j2.configurationFile=" in env["SPARK_SUBMIT_OPTS"]
    assert Path(env["SPARK_HOME"], "bin", "spark-submit").is_file()
    scratch = Path(env["SPARK_LOCAL_DIRS"])
    assert scratch.is_dir() and job.run_dir in scratch.parents
    target.close()
    assert not scratch.exists()  # Spark's scratch space goes with the run


def test_an_interpreter_too_old_for_spark_is_named(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ferry.targets.spark import installation

    src = awkward_dir / "old"
    src.mkdir()
    (src / "train.py").write_text("print('hi')\n")
    definition = ScriptRunConfig(
        str(src), "train.py", run_config=RunConfiguration(framework="pyspark")
    ).to_dict()
    definition["sourceDirectory"] = str(src)
    job = job_spec(
        run_id="r_2", experiment="e", target="sp", run_dir=workspace.runs_dir / "r_2",
        definition=definition,
    )  # fmt: skip
    monkeypatch.setattr(installation, "python_version", lambda python: (3, 8))
    target = SparkTarget("sp", SparkTarget.validate_config({}), workspace)
    with pytest.raises(TargetError, match=r"needs Python 3\.\d+ or newer.*is Python 3\.8"):
        target.prepare(job, RecordingContext())
