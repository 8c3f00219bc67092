"""Real PySpark jobs in local mode: a script written for the reference's Spark path runs unchanged.

Each Spark job starts a JVM (5–15 s here), so one job checks many things at once.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from ferry import (
    ComputeTarget,
    CondaDependencies,
    Environment,
    Experiment,
    RunConfiguration,
    ScriptRunConfig,
    SparkCompute,
)
from ferry.errors import TargetError
from ferry.liveness import pid_alive
from ferry.testing.conformance import wait_until

# Written as the reference's train-in-spark sample is (HDInsight, framework="pyspark"): numpy and
# pyspark.ml from the run's environment, a SparkSession reads iris.csv, a logistic regression is
# fitted, metrics go through azureml.core.run.Run, the model is saved under ./outputs.
TRAIN_SPARK = """
import numpy as np
import pyspark
import os
import sys

from pyspark.sql.functions import *
from pyspark.ml.classification import *
from pyspark.ml.evaluation import *
from pyspark.ml.feature import *

from azureml.core.run import Run

run = Run.get_context()
spark = pyspark.sql.SparkSession.builder.appName('Iris').getOrCreate()
print('Python version: {}'.format(sys.version))
print('Spark version: {}'.format(spark.version))

data = spark.read.csv('data/iris.csv', header=True, inferSchema=True)
feature_cols = data.columns[:-1]
assembler = pyspark.ml.feature.VectorAssembler(inputCols=feature_cols, outputCol='features')
data = assembler.transform(data).select(['features', 'species'])
label_indexer = pyspark.ml.feature.StringIndexer(inputCol='species', outputCol='label').fit(data)
data = label_indexer.transform(data).select(['features', 'label'])

reg = 0.01
if len(sys.argv) > 1:
    reg = float(sys.argv[1])
run.log('Regularization Rate', reg)

train, test = data.randomSplit([0.70, 0.30], seed=7)
model = pyspark.ml.classification.LogisticRegression(regParam=reg).fit(train)
prediction = model.transform(test)
evaluator = MulticlassClassificationEvaluator(metricName='accuracy')
accuracy = evaluator.evaluate(prediction)
print('Accuracy: {}'.format(np.round(accuracy, 3)))
run.log('Accuracy', accuracy)

run.tag('shuffle_partitions', spark.conf.get('spark.sql.shuffle.partitions'))
run.tag('from_target', spark.conf.get('spark.ferry.test.fromTarget'))
run.tag('worker_python', ','.join(data.rdd.map(lambda _: sys.executable).distinct().collect()))

model.write().overwrite().save(os.path.join('outputs', 'iris.model'))
prediction.select('label', 'prediction').coalesce(1).write.mode('overwrite').csv(
    'outputs/predictions', header=True
)
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
    rc.environment = Environment("spark-numpy")  # numpy for pyspark.ml, as the notebook asks
    rc.environment.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy"])
    config = ScriptRunConfig(str(src), "train-spark.py", arguments=[0.01], run_config=rc)
    run = Experiment(workspace, "train-in-spark").submit(config)
    details = run.wait_for_completion(raise_on_error=False)
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text()
    assert details["status"] == "Completed", log

    metrics = run.get_metrics()
    assert metrics["Regularization Rate"] == 0.01
    assert metrics["Accuracy"] >= 0.9, metrics
    tags = run.get_tags()
    assert tags["shuffle_partitions"] == "3"  # the run's spark.configuration wins
    assert tags["from_target"] == "yes"  # the target's conf reaches every run
    env_python = Path(tags["worker_python"])  # Python workers use the run's built environment
    assert workspace.envs_dir in env_python.parents, tags["worker_python"]
    files = run.get_file_names()
    assert any(f.startswith("outputs/iris.model/metadata/part-") for f in files), files
    assert any(f.startswith("outputs/predictions/part-") and f.endswith(".csv") for f in files)

    assert "--deploy-mode client" in log and "spark.sql.shuffle.partitions=3" in log
    assert "Spark version:" in log and "Accuracy:" in log
    assert " INFO " not in log  # Spark's own chatter stays out of the run's log (WARN level)


def test_a_plain_python_run_is_refused_with_the_fix(workspace, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    src = awkward_dir / "plain"
    src.mkdir()
    (src / "job.py").write_text("print('never runs')\n")
    ComputeTarget.attach(workspace, "spark", SparkCompute.attach_configuration(master="local[1]"))
    exp = Experiment(workspace, "plain")
    with pytest.raises(TargetError, match="framework='pyspark'") as caught:  # refused at submit
        exp.submit(ScriptRunConfig(str(src), "job.py", compute_target="spark"))
    assert "Spark target" in str(caught.value)
    assert list(exp.get_runs()) == []  # nothing was recorded


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
