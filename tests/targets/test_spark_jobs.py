"""Real PySpark jobs in local mode: a script written for the reference's Spark path runs unchanged.

Each Spark job starts a JVM (5–15 s here), so one job checks many things at once.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from ferry import ComputeTarget, Experiment, RunConfiguration, ScriptRunConfig, SparkCompute
from ferry.errors import RunFailed
from ferry.liveness import pid_alive
from ferry.testing.conformance import wait_until

# Written as for the reference (HDInsight, framework="pyspark"): a SparkSession reads a CSV,
# fits a nearest-centroid classifier, logs metrics through azureml.core.Run, saves under ./outputs.
TRAIN_SPARK = """
import argparse, json, os, sys

import pyspark
from pyspark.sql import functions as F
from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="data/iris.csv")
parser.add_argument("--smoothing", type=float, default=0.0)
args = parser.parse_args()

run = Run.get_context()
spark = pyspark.sql.SparkSession.builder.appName("Iris").getOrCreate()
print("Python version:", sys.version.split()[0])
print("Spark version:", spark.version, flush=True)

df = spark.read.csv(args.data, header=True, inferSchema=True)
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
run.log("rows", df.count())

centroids = {
    row["species"]: [row[f"avg({f})"] + args.smoothing for f in features]
    for row in df.groupBy("species").avg(*features).collect()
}

@F.udf("string")
def nearest(*values):
    dist = {s: sum((v - c) ** 2 for v, c in zip(values, cs)) for s, cs in centroids.items()}
    return min(dist, key=dist.get)

scored = df.withColumn("predicted", nearest(*features))
accuracy = scored.filter(F.col("predicted") == F.col("species")).count() / df.count()
run.log("accuracy", accuracy)
run.log_list("classes", sorted(centroids))
run.tag("shuffle_partitions", spark.conf.get("spark.sql.shuffle.partitions"))
run.tag("from_target", spark.conf.get("spark.ferry.test.fromTarget"))
run.tag("app_name", spark.sparkContext.appName)

os.makedirs("./outputs/model", exist_ok=True)
with open("./outputs/model/centroids.json", "w") as fh:
    json.dump(centroids, fh)
scored.groupBy("species", "predicted").count().coalesce(1).write.mode("overwrite").csv(
    "./outputs/confusion", header=True
)
spark.stop()
"""


def _iris_like(path: Path) -> None:
    """Three well separated classes, 150 rows, as iris.csv is laid out."""
    rng = random.Random(7)
    centres = {
        "setosa": (5.0, 3.4, 1.5, 0.2),
        "versicolor": (5.9, 2.8, 4.3, 1.3),
        "virginica": (6.6, 3.0, 5.6, 2.0),
    }
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for species, centre in centres.items():
        for _ in range(50):
            values = [round(c + rng.gauss(0, 0.15), 2) for c in centre]
            lines.append(",".join(map(str, values)) + f",{species}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def test_reference_style_pyspark_script_runs_unchanged(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    src = awkward_dir / "spark project"
    src.mkdir()
    (src / "train-spark.py").write_text(textwrap.dedent(TRAIN_SPARK))
    _iris_like(src / "data" / "iris.csv")
    ComputeTarget.attach(
        workspace,
        "hdi",
        SparkCompute.attach_configuration(
            master="local[2]",
            conf={"spark.sql.shuffle.partitions": 8, "spark.ferry.test.fromTarget": "yes"},
        ),
    )
    rc = RunConfiguration(framework="pyspark")  # as the reference's notebook writes it
    rc.target = "hdi"
    rc.spark.configuration["spark.sql.shuffle.partitions"] = 3
    config = ScriptRunConfig(str(src), "train-spark.py", run_config=rc)
    config.arguments = ["--smoothing", 0.0]
    config.run_config.arguments = list(config.arguments)
    run = Experiment(workspace, "train-in-spark").submit(config)
    details = run.wait_for_completion(raise_on_error=False)
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert details["status"] == "Completed", log

    metrics = run.get_metrics()
    assert metrics["rows"] == 150
    assert metrics["accuracy"] >= 0.9, metrics
    assert metrics["classes"] == ["setosa", "versicolor", "virginica"]
    tags = run.get_tags()
    assert tags["shuffle_partitions"] == "3"  # the run's spark.configuration wins
    assert tags["from_target"] == "yes"  # the target's conf reaches every run
    assert tags["app_name"] == "Iris"  # the script's own builder settings still apply
    files = run.get_file_names()
    assert "outputs/model/centroids.json" in files
    assert any(f.startswith("outputs/confusion/part-") and f.endswith(".csv") for f in files)

    assert "--deploy-mode client" in log and "spark.sql.shuffle.partitions=3" in log
    assert "Spark version:" in log
    assert " INFO " not in log  # Spark's own chatter stays out of the run's log (WARN level)


def test_a_plain_python_run_is_refused_with_the_fix(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    src = awkward_dir / "plain"
    src.mkdir()
    (src / "job.py").write_text("print('never runs')\n")
    ComputeTarget.attach(workspace, "spark", SparkCompute.attach_configuration(master="local[1]"))
    run = Experiment(workspace, "plain").submit(
        ScriptRunConfig(str(src), "job.py", compute_target="spark")
    )
    with pytest.raises(RunFailed, match="framework='pyspark'"):
        run.wait_for_completion()
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "Spark target" in details["error"]["error"]["message"]


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

sc.parallelize(range(2), 2).map(slow).count()
"""


def test_cancel_ends_the_jvm_the_driver_and_the_python_workers(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path
) -> None:
    """pyspark's worker daemon leaves the job's process group: it must still end with the run."""
    src, out = awkward_dir / "long", awkward_dir / "pids"
    src.mkdir()
    out.mkdir()
    (src / "job.py").write_text(textwrap.dedent(LONG_STAGE))
    ComputeTarget.attach(workspace, "spark", SparkCompute.attach_configuration(master="local[2]"))
    rc = RunConfiguration(framework="pyspark")
    rc.target = "spark"
    config = ScriptRunConfig(str(src), "job.py", arguments=[str(out)], run_config=rc)
    run = Experiment(workspace, "long").submit(config)
    wait_until(
        lambda: len(list(out.glob("worker-*.pid"))) == 2 and (out / "driver.pids").exists(),
        timeout=120,
        what="two Python workers to run the stage",
    )
    assert run.cancel() is True
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Canceled"
    driver_python, driver_jvm = map(int, (out / "driver.pids").read_text().split())
    workers = [int(p.read_text()) for p in out.glob("worker-*.pid")]
    for pid in (driver_python, driver_jvm, *workers):
        _wait_dead(pid)


def _wait_dead(pid: int) -> None:
    wait_until(lambda: not pid_alive(pid), timeout=30, what=f"process {pid} to end")
