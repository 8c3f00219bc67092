"""Spark compute targets: ``framework="pyspark"`` runs go through spark-submit.

The driver runs on this machine (client mode) against the target's master — ``local[*]`` or a
standalone cluster's ``spark://host:port`` — so logs, metrics and ./outputs flow like any run's.

What a run on a Spark target gets:

- ``spark-submit --master <target's> --deploy-mode client``, a ``--conf`` for each of the target's
  ``conf`` and of the run configuration's ``spark.configuration`` (the run's win), ``--packages``
  and ``--repositories`` from the environment's ``spark`` section, then the script and arguments;
- Spark from the pyspark package (or the target's ``spark_home``), ``PYSPARK_PYTHON`` and
  ``PYSPARK_DRIVER_PYTHON`` = the run environment's interpreter (on a multi-machine cluster that
  path must exist on the workers too: use a user-managed environment installed alike everywhere);
- for a master on this machine, ``SPARK_LOCAL_IP=127.0.0.1``; Spark's own log at WARN unless a
  log4j2 configuration of yours is found; Spark's scratch folders kept with the run.

Only PySpark runs are accepted: a run whose framework is ``Python`` (the default) fails at once
with a message saying to set ``framework="pyspark"``, so a script meant for another target is
never half-run through Spark. ``hdi.yarn_deploy_mode`` is not used: the driver is always here.

Example::

    from ferry import ComputeTarget, RunConfiguration, SparkCompute
    ComputeTarget.attach(ws, "spark", SparkCompute.attach_configuration(master="local[*]"))
    rc = RunConfiguration(framework="pyspark")
    rc.target = "spark"
"""

from __future__ import annotations

from ferry.targets.spark.target import SparkTarget

__all__ = ["SparkTarget"]
