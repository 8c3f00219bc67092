"""HDInsightCompute: spark-submit on a "head node" reached over a real sshd on loopback.

The head is this machine over SSH; its spark-submit is the installed pyspark's, master
``local[2]``. One Spark job (a JVM: 5-15 s here) checks the log, the metrics, the outputs and the
Spark settings at once.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import sshd
from sshd import SshServer

from ferry import ComputeTarget, Experiment, RunConfiguration, ScriptRunConfig
from ferry.compute_hdinsight import HDInsightCompute
from ferry.compute_settings import declare_alias, resource_id
from ferry.errors import ComputeTargetException, ConfigError
from ferry.targets.spark import installation

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

JOB = """
import sys
from pyspark.sql import SparkSession
from azureml.core.run import Run

run = Run.get_context()
spark = SparkSession.builder.getOrCreate()
total = spark.sparkContext.parallelize(range(1, 101), 4).sum()
print("sum on the head:", total, "master:", spark.sparkContext.master, flush=True)
print("partitions:", spark.conf.get("spark.sql.shuffle.partitions"), flush=True)
run.log("total", total)
with open("outputs/result.txt", "w") as fh:
    fh.write(str(total))
spark.stop()
"""


def _config(server: SshServer, root: Path, **extra: object) -> dict[str, object]:
    settings = server.attach_config(work_dir=str(root), interpreter_path=sys.executable)
    home = installation.spark_home({})
    return {
        **settings,
        "master": "local[2]",
        "spark_submit": installation.spark_submit(home),
        "conf": {"spark.sql.shuffle.partitions": 3},
        **extra,
    }


def test_a_pyspark_run_is_submitted_on_the_head_node(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    config = HDInsightCompute.attach_configuration(**_config(ssh_server, remote_root))
    hdi = ComputeTarget.attach(workspace, "hdi", config)
    assert isinstance(hdi, HDInsightCompute) and hdi.master == "local[2]"
    assert isinstance(ComputeTarget(workspace, "hdi"), HDInsightCompute)
    src = awkward_dir / "src"
    src.mkdir()
    (src / "job.py").write_text(textwrap.dedent(JOB), encoding="utf-8")
    rc = RunConfiguration(framework="pyspark")
    rc.target = hdi
    rc.spark.configuration["spark.sql.shuffle.partitions"] = 5  # the run's wins
    run = Experiment(workspace, "hdi").submit(ScriptRunConfig(str(src), "job.py", run_config=rc))
    details = run.wait_for_completion(raise_on_error=False, timeout_seconds=240)
    log = (workspace.runs_dir / run.id / "user_logs" / "std_log.txt").read_text()
    assert details["status"] == "Completed", log
    assert "sum on the head: 5050 master: local[2]" in log
    assert "partitions: 5" in log
    assert "--deploy-mode client" in log and str(remote_root) not in log.split("ferry: on")[0]
    assert run.get_metrics() == {"total": 5050}
    assert "outputs/result.txt" in run.get_file_names()


def test_a_plain_python_run_is_refused_with_what_to_change(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path
) -> None:
    ComputeTarget.attach(
        workspace, "hdi", HDInsightCompute.attach_configuration(**_config(ssh_server, remote_root))
    )
    src = awkward_dir / "plain"
    src.mkdir()
    (src / "job.py").write_text("print('never')\n", encoding="utf-8")
    with pytest.raises(ComputeTargetException, match="framework='pyspark'"):
        Experiment(workspace, "hdi").submit(
            ScriptRunConfig(str(src), "job.py", compute_target="hdi")
        )


def test_a_cluster_named_by_resource_id_needs_its_address_declared_once(  # type: ignore[no-untyped-def]
    workspace, ssh_server: SshServer, remote_root: Path
) -> None:
    settings = _config(ssh_server, remote_root)
    address, port = settings.pop("address"), settings.pop("ssh_port")
    config = HDInsightCompute.attach_configuration(
        subscription_id="sub", resource_group="rg", cluster_name="sparky", password="hunter2",
        **settings,
    )  # fmt: skip
    with pytest.raises(ComputeTargetException) as refused:
        ComputeTarget.attach(workspace, "hdi", config)
    assert isinstance(refused.value, ConfigError)
    assert "ferry target alias" in str(refused.value)
    rid = resource_id("hdinsight", "sub", "rg", "sparky")
    assert (
        rid == "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.HDInsight/clusters/sparky"
    )
    declare_alias(workspace.path, rid.upper(), f"{address}:{port}")  # ids are case-insensitive
    hdi = ComputeTarget.attach(workspace, "hdi", config)
    assert (hdi.config["address"], hdi.config["ssh_port"]) == (address, port)
    assert hdi.config["resource_id"] == rid
    assert "hunter2" not in str(hdi.serialize()) and hdi.config["password_from_env"] is True
