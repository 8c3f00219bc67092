"""Spark compute targets: ``framework="pyspark"`` runs go through spark-submit.

The driver runs on this machine (client mode) against the target's master — ``local[*]`` or a
standalone cluster's ``spark://host:port`` — so logs, metrics and ./outputs flow like any run's.

Example::

    from ferry import ComputeTarget, RunConfiguration, SparkCompute
    ComputeTarget.attach(ws, "spark", SparkCompute.attach_configuration(master="local[*]"))
    rc = RunConfiguration(framework="pyspark")
    rc.target = "spark"
"""

from __future__ import annotations

from ferry.targets.spark.config import SparkAttachConfiguration, SparkCompute
from ferry.targets.spark.target import SparkTarget

__all__ = ["SparkAttachConfiguration", "SparkCompute", "SparkTarget"]
