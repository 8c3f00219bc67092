"""A real Spark standalone master and worker on loopback: jobs run on the cluster's executors,
and cancelling a run ends its Spark application there.

The daemons come from the pyspark package (``spark-class …Master`` / ``…Worker``) and need Java;
without it this test fails saying how to install it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferry import ComputeTarget, Experiment, RunConfiguration, ScriptRunConfig, SparkCompute
from ferry.liveness import pid_alive
from ferry.targets.spark.standalone import StandaloneCluster
from ferry.testing.conformance import wait_until

ON_EXECUTORS = """
import os, sys
from pyspark.sql import SparkSession
from azureml.core import Run

spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
run = Run.get_context()
run.tag("master", sc.master)
# squares computed by Python workers of the cluster's executor, with the run's interpreter
total = sc.parallelize(range(100), 2).map(lambda x: x * x).sum()
pythons = set(sc.parallelize(range(2), 2).map(lambda _: sys.executable).collect())
run.log("sum_of_squares", total)
run.tag("worker_python", ",".join(sorted(pythons)))
print("driver python", sys.executable)
"""

LONG_STAGE = """
import os, sys, time
from pyspark.sql import SparkSession

out = sys.argv[1]
spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
jvm = sc._jvm.java.lang.ProcessHandle.current().pid()
with open(os.path.join(out, "driver.pids"), "w") as fh:
    fh.write(f"{os.getpid()} {jvm}")

def slow(i):
    with open(os.path.join(out, f"worker-{os.getpid()}.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    time.sleep(300)
    return i

sc.parallelize(range(1), 1).map(slow).count()
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    with StandaloneCluster(tmp_path_factory.mktemp("spark cluster ü"), cores=1) as running:
        yield running


def _submit(workspace, src: Path, script: str, arguments: list[str] | None = None):  # type: ignore[no-untyped-def]
    src.mkdir(parents=True, exist_ok=True)
    (src / "job.py").write_text(textwrap.dedent(script))
    rc = RunConfiguration(framework="pyspark")
    rc.target = "cluster"
    rc.spark.configuration["spark.executor.memory"] = "512m"
    config = ScriptRunConfig(str(src), "job.py", arguments=arguments, run_config=rc)
    config.run_config.arguments = list(arguments or [])
    return Experiment(workspace, "standalone").submit(config)


def test_jobs_run_on_a_standalone_cluster_and_cancel_ends_the_application(  # type: ignore[no-untyped-def]
    cluster: StandaloneCluster, workspace, awkward_dir: Path
) -> None:
    ComputeTarget.attach(
        workspace, "cluster", SparkCompute.attach_configuration(master=cluster.master_url)
    )
    run = _submit(workspace, awkward_dir / "ok", ON_EXECUTORS)
    details = run.wait_for_completion(raise_on_error=False)
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert details["status"] == "Completed", log
    assert run.get_metrics()["sum_of_squares"] == sum(x * x for x in range(100))
    tags = run.get_tags()
    assert tags["master"] == cluster.master_url
    python = log.split("driver python ", 1)[1].split()[0]
    assert tags["worker_python"] == python  # executors use the run's environment
    apps = cluster.applications()
    assert [a["state"] for a in apps["completedapps"]] == ["FINISHED"]

    out = awkward_dir / "pids"
    out.mkdir()
    run = _submit(workspace, awkward_dir / "long", LONG_STAGE, [str(out)])
    wait_until(
        lambda: any(out.glob("worker-*.pid")) and (out / "driver.pids").exists(),
        timeout=180,
        what="the long stage to start on the cluster's executor",
    )
    assert cluster.applications()["activeapps"], "the application is not on the cluster"
    assert run.cancel() is True
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    driver_python, driver_jvm = map(int, (out / "driver.pids").read_text().split())
    workers = [int(p.read_text()) for p in out.glob("worker-*.pid")]
    for pid in (driver_python, driver_jvm, *workers):
        _wait_dead(pid)
    wait_until(
        lambda: not cluster.applications()["activeapps"],
        timeout=30,
        what="the cluster to end the canceled application",
    )


def _wait_dead(pid: int) -> None:
    wait_until(lambda: not pid_alive(pid), timeout=30, what=f"process {pid} to end")
