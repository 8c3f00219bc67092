"""Hyperparameter sweeps: the reference's ``azureml.train.hyperdrive``, on every target.

A sweep is one ``HyperDriveRun`` (``HD_<uuid>``, type ``hyperdrive``) whose children are
ordinary runs ``HD_<uuid>_<n>`` of the same experiment, all from one snapshot, each with its
sampled values appended to the script's arguments as ``--name value``. A detached controller
process (restarted if it dies) starts the children on whatever target the ScriptRunConfig names,
applies the early-termination policy each time a child logs the primary metric, and ends the
sweep; the driver may exit meanwhile.

Example::

    from ferry.hyperdrive import (HyperDriveConfig, RandomParameterSampling, BanditPolicy,
                                  PrimaryMetricGoal, uniform, choice)
    sampling = RandomParameterSampling({"--alpha": uniform(0, 1), "--kernel": choice("a", "b")})
    hd = HyperDriveConfig(run_config=src, hyperparameter_sampling=sampling,
                          policy=BanditPolicy(slack_factor=0.1), primary_metric_name="r2",
                          primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=20,
                          max_concurrent_runs=4)
    run = experiment.submit(hd)
    run.wait_for_completion(show_output=True)
    run.get_best_run_by_primary_metric().get_metrics()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferry._lazy import lazy_names

__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "EarlyTerminationPolicy",
    "GridParameterSampling",
    "HyperDriveConfig",
    "HyperDriveRun",
    "HyperParameterSampling",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]

# Imported lazily: the parameter expressions cost nothing; the run handle imports the library.
_LAZY = {
    "HyperDriveConfig": "ferry.hyperdrive.config",
    "PrimaryMetricGoal": "ferry.hyperdrive.config",
    "HyperDriveRun": "ferry.hyperdrive.run",
    "HyperParameterSampling": "ferry.hyperdrive.sampling",
    "RandomParameterSampling": "ferry.hyperdrive.sampling",
    "GridParameterSampling": "ferry.hyperdrive.sampling",
    "BayesianParameterSampling": "ferry.hyperdrive.sampling",
    "EarlyTerminationPolicy": "ferry.hyperdrive.policy",
    "BanditPolicy": "ferry.hyperdrive.policy",
    "MedianStoppingPolicy": "ferry.hyperdrive.policy",
    "TruncationSelectionPolicy": "ferry.hyperdrive.policy",
    "NoTerminationPolicy": "ferry.hyperdrive.policy",
    **{
        name: "ferry.hyperdrive.expressions"
        for name in (
            "choice",
            "randint",
            "uniform",
            "quniform",
            "loguniform",
            "qloguniform",
            "normal",
            "qnormal",
            "lognormal",
            "qlognormal",
        )
    },
}

if TYPE_CHECKING:
    from ferry.hyperdrive.config import HyperDriveConfig, PrimaryMetricGoal
    from ferry.hyperdrive.expressions import (
        choice,
        lognormal,
        loguniform,
        normal,
        qlognormal,
        qloguniform,
        qnormal,
        quniform,
        randint,
        uniform,
    )
    from ferry.hyperdrive.policy import (
        BanditPolicy,
        EarlyTerminationPolicy,
        MedianStoppingPolicy,
        NoTerminationPolicy,
        TruncationSelectionPolicy,
    )
    from ferry.hyperdrive.run import HyperDriveRun
    from ferry.hyperdrive.sampling import (
        BayesianParameterSampling,
        GridParameterSampling,
        HyperParameterSampling,
        RandomParameterSampling,
    )

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
