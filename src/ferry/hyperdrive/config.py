"""HyperDriveConfig and PrimaryMetricGoal: a sweep as the reference configures it.

Validation follows the reference: exactly one of ``run_config`` (a ScriptRunConfig) and
``estimator`` (anything with ``_to_script_run_config()``; ``pipeline`` is refused: ferry has no
pipelines); ``policy=None`` means no termination; ``max_concurrent_runs=None`` means all at
once; ``max_duration_minutes`` above 10080 is clamped with a warning; Bayesian sampling takes no
early-termination policy and warns below 20 runs per parameter or above 20 at a time;
``resume_from`` takes at most 5 ended sweeps with the same primary metric (and, for Bayesian
sampling, the same space), no duplicates, 1000 runs in all.

Example::

    hd = HyperDriveConfig(run_config=src, hyperparameter_sampling=RandomParameterSampling(
             {"--alpha": uniform(0, 1)}), primary_metric_name="r2",
             primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=20,
             max_concurrent_runs=4, policy=BanditPolicy(slack_factor=0.1))
    run = experiment.submit(hd)          # a HyperDriveRun, at once
"""

from __future__ import annotations

import enum
import re
import warnings
from typing import TYPE_CHECKING, Any

from ferry.errors import ConfigError
from ferry.hyperdrive.policy import EarlyTerminationPolicy, NoTerminationPolicy, policy_from_json
from ferry.hyperdrive.sampling import (
    BayesianParameterSampling,
    HyperParameterSampling,
    sampling_from_json,
)
from ferry.hyperdrive.sweep import MAX_DURATION_MINUTES, RUN_TYPE, SweepSpec

if TYPE_CHECKING:
    from ferry.experiment import Experiment
    from ferry.hyperdrive.run import HyperDriveRun
    from ferry.script_run_config import ScriptRunConfig

RECOMMENDED_MIN_RUNS_PER_PARAMETER_BAYESIAN = 20
RECOMMENDED_MAX_CONCURRENT_RUNS_BAYESIAN = 20
MAX_PARENT_RUNS = 5
RESUME_FROM_TOTAL_RUNS = 1000
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")


class PrimaryMetricGoal(enum.Enum):
    """Whether a larger or a smaller primary metric is better."""

    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"

    @staticmethod
    def from_str(goal: str) -> PrimaryMetricGoal:
        if isinstance(goal, str):
            for member in PrimaryMetricGoal:
                if goal.strip().lower() == member.name.lower():
                    return member
        raise ConfigError(
            f"the primary metric goal must be either 'maximize' or 'minimize', not {goal!r}"
        )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"HyperDriveConfig: {name} must be a whole number ≥ 1, not {value!r}")
    return value


class HyperDriveConfig:
    """A hyperparameter sweep: what to run, how to sample, when to stop (see the module)."""

    _PLATFORM = "AML"

    def __init__(
        self,
        hyperparameter_sampling: HyperParameterSampling,
        primary_metric_name: str,
        primary_metric_goal: PrimaryMetricGoal | str,
        max_total_runs: int,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: float = MAX_DURATION_MINUTES,
        policy: EarlyTerminationPolicy | None = None,
        estimator: Any = None,
        run_config: ScriptRunConfig | None = None,
        resume_from: Any = None,
        resume_child_runs: Any = None,
        pipeline: Any = None,
        debug_flag: Any = None,
        custom_run_id: str | None = None,
    ) -> None:
        from ferry.script_run_config import ScriptRunConfig

        given = [v for v in (estimator, run_config, pipeline) if v is not None]
        if len(given) != 1:
            raise ConfigError(
                "HyperDriveConfig expects exactly one of estimator, run_config or pipeline to "
                f"be set ({len(given)} given); e.g. run_config=ScriptRunConfig(...)"
            )
        if pipeline is not None:
            raise ConfigError(
                "HyperDriveConfig(pipeline=...) is not supported by ferry (it has no pipelines); "
                "sweep a ScriptRunConfig with run_config=..."
            )
        if run_config is not None and not isinstance(run_config, ScriptRunConfig):
            raise ConfigError(
                f"HyperDriveConfig: run_config must be a ScriptRunConfig, not "
                f"{type(run_config).__name__}"
            )
        if estimator is not None and not callable(
            getattr(estimator, "_to_script_run_config", None)
        ):
            raise ConfigError(
                f"HyperDriveConfig: estimator must be an Estimator (ferry.estimator), not "
                f"{type(estimator).__name__}"
            )
        if not isinstance(hyperparameter_sampling, HyperParameterSampling):
            raise ConfigError(
                "HyperDriveConfig expects hyperparameter_sampling to be set to a "
                "RandomParameterSampling, GridParameterSampling or BayesianParameterSampling, "
                f"not {hyperparameter_sampling!r}"
            )
        if policy is None:
            policy = NoTerminationPolicy()
        if not isinstance(policy, EarlyTerminationPolicy):
            raise ConfigError(
                "HyperDriveConfig: policy must be a BanditPolicy, MedianStoppingPolicy, "
                f"TruncationSelectionPolicy or NoTerminationPolicy (or None), not {policy!r}"
            )
        is_bayesian = isinstance(hyperparameter_sampling, BayesianParameterSampling)
        if is_bayesian and not isinstance(policy, NoTerminationPolicy):
            raise ConfigError(
                "HyperDriveConfig: early termination policy for Bayesian sampling is not "
                "supported (as in the reference); use policy=None"
            )
        if not isinstance(primary_metric_name, str) or not primary_metric_name:
            raise ConfigError(
                "HyperDriveConfig: primary_metric_name must be the name the script logs, "
                f"as in run.log('accuracy', …), not {primary_metric_name!r}"
            )
        if not isinstance(primary_metric_goal, PrimaryMetricGoal):
            primary_metric_goal = PrimaryMetricGoal.from_str(primary_metric_goal)
        total = _positive_int(max_total_runs, "max_total_runs")
        concurrent = (
            total
            if max_concurrent_runs is None
            else _positive_int(max_concurrent_runs, "max_concurrent_runs")
        )
        if (
            isinstance(max_duration_minutes, bool)
            or not isinstance(max_duration_minutes, int | float)
            or not max_duration_minutes > 0
        ):
            raise ConfigError(
                "HyperDriveConfig: max_duration_minutes must be a positive number of minutes, "
                f"not {max_duration_minutes!r}"
            )
        if max_duration_minutes > MAX_DURATION_MINUTES:
            warnings.warn(
                "The experiment maximum duration provided exceeds the service limit of "
                f"{MAX_DURATION_MINUTES} minutes. The maximum duration will be overridden with "
                f"{MAX_DURATION_MINUTES} minutes.",
                stacklevel=2,
            )
            max_duration_minutes = MAX_DURATION_MINUTES
        if resume_child_runs is not None:
            raise ConfigError(
                "HyperDriveConfig(resume_child_runs=...) is not supported by ferry; warm-start "
                "from earlier sweeps with resume_from=[previous_hyperdrive_run]"
            )
        if custom_run_id is not None and (
            not isinstance(custom_run_id, str) or not _RUN_ID.fullmatch(custom_run_id)
        ):
            raise ConfigError(
                "HyperDriveConfig: custom_run_id must be 1-200 letters, digits, '_', '-' or '.' "
                f"starting with a letter or digit (it names the sweep's folder), not {custom_run_id!r}"
            )
        self._estimator = estimator
        self._run_config = run_config
        self._pipeline = None
        self._debug_flag = debug_flag
        self._custom_run_id = custom_run_id
        self._sampling = hyperparameter_sampling
        self._policy = policy
        self._generator_config = hyperparameter_sampling.to_json()
        self._policy_config = policy.to_json()
        self._primary_metric_config = {
            "name": primary_metric_name,
            "goal": primary_metric_goal.name.lower(),
        }
        self._max_total_runs = total
        self._max_concurrent_runs = concurrent
        self._max_duration_minutes = max_duration_minutes
        self._platform = self._PLATFORM
        if is_bayesian:
            self._bayesian_advice(len(hyperparameter_sampling.spec.space))
        self._resume_runs = self._check_resume_from(resume_from, is_bayesian)
        self._resume_from = [
            {"run_scope": {"experiment_name": r.experiment.name}, "run_id": r.id}
            for r in self._resume_runs
        ] or None

    def _bayesian_advice(self, parameters: int) -> None:
        recommended = RECOMMENDED_MIN_RUNS_PER_PARAMETER_BAYESIAN * parameters
        if self._max_total_runs < recommended:
            warnings.warn(
                "For best results with Bayesian Sampling we recommend using a maximum number of "
                f"runs greater than or equal to {RECOMMENDED_MIN_RUNS_PER_PARAMETER_BAYESIAN} "
                f"times the number of hyperparameters being tuned. Recommendend value:{recommended}.",
                stacklevel=3,
            )
        if self._max_concurrent_runs > RECOMMENDED_MAX_CONCURRENT_RUNS_BAYESIAN:
            warnings.warn(
                f"We recommend using {RECOMMENDED_MAX_CONCURRENT_RUNS_BAYESIAN} max concurrent "
                "runs or fewer when using Bayesian sampling since a higher number might not "
                "provide the best result.",
                stacklevel=3,
            )

    def _check_resume_from(self, resume_from: Any, is_bayesian: bool) -> list[HyperDriveRun]:
        from ferry.hyperdrive.run import HyperDriveRun

        if resume_from is None:
            return []
        runs = list(resume_from) if isinstance(resume_from, list | tuple) else [resume_from]
        if len(runs) > MAX_PARENT_RUNS:
            raise ConfigError(
                f"HyperDriveConfig: resume_from takes at most {MAX_PARENT_RUNS} earlier sweeps, "
                f"got {len(runs)}"
            )
        total, seen = self._max_total_runs, set()
        for run in runs:
            if not isinstance(run, HyperDriveRun):
                raise ConfigError(
                    "HyperDriveConfig: resume_from expects HyperDriveRun objects (the runs "
                    f"experiment.submit(hyperdrive_config) returned), not {run!r}"
                )
            if run.id in seen:
                raise ConfigError(
                    "resume_from cannot contain duplicate runs. More than one run with id "
                    f"'{run.id}' was found"
                )
            seen.add(run.id)
            theirs = run.hyperdrive_config
            for key in ("name", "goal"):
                mine, other = self._primary_metric_config[key], theirs._primary_metric_config[key]
                if mine != other:
                    raise ConfigError(
                        f"resume_from: the primary metric {key} of {run.id} is {other!r}, this "
                        f"sweep's is {mine!r}; a warm start needs the same primary metric"
                    )
            if is_bayesian and (
                theirs._generator_config["parameter_space"]
                != self._generator_config["parameter_space"]
            ):
                raise ConfigError(
                    f"resume_from: {run.id} swept another parameter space; a Bayesian warm "
                    "start needs the same parameter_space"
                )
            status = run.get_status()
            if status not in ("Completed", "Canceled"):
                raise ConfigError(
                    "All resume_from runs should be completed or canceled. A resume_from run "
                    f"with status '{status}' was found ({run.id})"
                )
            total += theirs._max_total_runs
        if total > RESUME_FROM_TOTAL_RUNS:
            raise ConfigError(
                f"The number of total runs should not be greater than {RESUME_FROM_TOTAL_RUNS} "
                f"(this sweep's max_total_runs plus those of resume_from: {total})"
            )
        return runs

    # the reference's properties ---------------------------------------------------------------
    @property
    def estimator(self) -> Any:
        return self._estimator

    @property
    def run_config(self) -> ScriptRunConfig | None:
        return self._run_config

    @property
    def pipeline(self) -> None:
        return None

    @property
    def source_directory(self) -> str | None:
        src = self._run_config if self._run_config is not None else None
        if src is None and self._estimator is not None:
            return getattr(self._estimator, "source_directory", None)
        return src.source_directory if src is not None else None

    @property
    def hyperparameter_sampling(self) -> HyperParameterSampling:
        return self._sampling

    @property
    def policy(self) -> EarlyTerminationPolicy:
        return self._policy

    def script_run_config(self) -> ScriptRunConfig:
        """What each child runs: the run_config, or the estimator's ScriptRunConfig."""
        if self._run_config is not None:
            return self._run_config
        src = self._estimator._to_script_run_config()
        from ferry.script_run_config import ScriptRunConfig

        if not isinstance(src, ScriptRunConfig):
            raise ConfigError(
                f"{type(self._estimator).__name__}._to_script_run_config() returned "
                f"{type(src).__name__}, not a ScriptRunConfig"
            )
        return src

    def _spec(self, child_definition: dict[str, Any], seed: int) -> SweepSpec:
        return SweepSpec(
            sampling=self._sampling.spec,
            policy=self._policy.spec,
            metric=self._primary_metric_config["name"],
            maximize=self._primary_metric_config["goal"] == "maximize",
            max_total_runs=self._max_total_runs,
            max_concurrent_runs=self._max_concurrent_runs,
            max_duration_minutes=self._max_duration_minutes,
            child_definition=child_definition,
            seed=seed,
            resume_from=tuple(r.id for r in self._resume_runs),
        )

    def _ferry_submit(
        self, experiment: Experiment, tags: Any = None, **kwargs: Any
    ) -> HyperDriveRun:
        """``experiment.submit(hyperdrive_config)``: start the sweep, return its run at once."""
        from ferry.hyperdrive.submit import submit_sweep

        return submit_sweep(experiment, self, tags=tags, **kwargs)

    @classmethod
    def _from_stored(cls, spec: SweepSpec, run_config: ScriptRunConfig) -> HyperDriveConfig:
        """The configuration of a stored sweep (``HyperDriveRun.hyperdrive_config``)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = cls(
                hyperparameter_sampling=sampling_from_json(spec.sampling.to_json()),
                primary_metric_name=spec.metric,
                primary_metric_goal=PrimaryMetricGoal.MAXIMIZE
                if spec.maximize
                else PrimaryMetricGoal.MINIMIZE,
                max_total_runs=spec.max_total_runs,
                max_concurrent_runs=spec.max_concurrent_runs,
                max_duration_minutes=spec.max_duration_minutes,
                policy=policy_from_json(spec.policy.to_json()),
                run_config=run_config,
            )
        config._resume_from = [{"run_id": r} for r in spec.resume_from] or None
        return config

    def __repr__(self) -> str:
        return (
            f"HyperDriveConfig(sampling={self._generator_config['name']}, "
            f"metric={self._primary_metric_config}, max_total_runs={self._max_total_runs}, "
            f"max_concurrent_runs={self._max_concurrent_runs}, policy={self._policy_config['name']})"
        )


__all__ = ["RUN_TYPE", "HyperDriveConfig", "PrimaryMetricGoal"]
