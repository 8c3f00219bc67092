"""The reference's early-termination policies: Bandit, MedianStopping, TruncationSelection and
NoTerminationPolicy.

Each constructor validates as the reference does (exactly one slack for Bandit, whole numbers
for the intervals, ``truncation_percentage`` 1..99) — and also refuses what the reference let
through to fail later (an ``evaluation_interval`` below 1, a negative delay or slack). Each keeps
a frozen :class:`~ferry.hyperdrive.termination.PolicySpec`; the decisions themselves are the pure
functions of :mod:`ferry.hyperdrive.termination`.

Example::

    BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=5)
    TruncationSelectionPolicy(truncation_percentage=20)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from ferry.errors import ConfigError
from ferry.hyperdrive.termination import NO_POLICY, PolicySpec


def _whole(value: Any, name: str, policy: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{policy}: {name} must be a whole number (int), not {value!r}")
    if value < minimum:
        raise ConfigError(f"{policy}: {name} must be at least {minimum}, not {value!r}")
    return value


def _slack(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"BanditPolicy: {name} must be a number, not {value!r}")
    if value < 0:
        raise ConfigError(f"BanditPolicy: {name} must not be negative, not {value!r}")
    return float(value)


class EarlyTerminationPolicy:
    """Base of the policies (the reference's abstract class)."""

    POLICY_NAME: ClassVar[str] = NO_POLICY

    def __init__(self, spec: PolicySpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def evaluation_interval(self) -> int:
        return self._spec.evaluation_interval

    @property
    def delay_evaluation(self) -> int:
        return self._spec.delay_evaluation

    def to_json(self) -> dict[str, Any]:
        """The reference's ``policy_config`` dict."""
        return self._spec.to_json()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EarlyTerminationPolicy) and self._spec == other._spec

    def __hash__(self) -> int:
        return hash(self._spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_json().get('properties', {})!r})"


class BanditPolicy(EarlyTerminationPolicy):
    """Cut a run whose best metric falls outside a slack of the best run's.

    ``slack_factor`` is a ratio (0.1: a run below best / 1.1 is cut, maximizing),
    ``slack_amount`` an absolute distance; give exactly one.
    """

    POLICY_NAME = "Bandit"

    def __init__(
        self,
        evaluation_interval: int = 1,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        delay_evaluation: int = 0,
    ) -> None:
        if (slack_factor is None) == (slack_amount is None):
            raise ConfigError(
                "BanditPolicy expects exactly one of slack_factor or slack_amount to be set "
                "(e.g. BanditPolicy(slack_factor=0.1))"
            )
        super().__init__(
            PolicySpec(
                self.POLICY_NAME,
                _whole(evaluation_interval, "evaluation_interval", "BanditPolicy", 1),
                _whole(delay_evaluation, "delay_evaluation", "BanditPolicy", 0),
                slack_factor=None if slack_factor is None else _slack(slack_factor, "slack_factor"),
                slack_amount=None if slack_amount is None else _slack(slack_amount, "slack_amount"),
            )
        )

    @property
    def slack_factor(self) -> float | None:
        return self._spec.slack_factor

    @property
    def slack_amount(self) -> float | None:
        return self._spec.slack_amount


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Cut a run whose best metric is worse than the median of all runs' running averages.

    ``evaluation_interval=1, delay_evaluation=5`` is the reference's conservative suggestion.
    """

    POLICY_NAME = "MedianStopping"

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        name = "MedianStoppingPolicy"
        super().__init__(
            PolicySpec(
                self.POLICY_NAME,
                _whole(evaluation_interval, "evaluation_interval", name, 1),
                _whole(delay_evaluation, "delay_evaluation", name, 0),
            )
        )


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """At each evaluation, cut the runs among the lowest ``truncation_percentage`` %."""

    POLICY_NAME = "TruncationSelection"

    def __init__(
        self, truncation_percentage: int, evaluation_interval: int = 1, delay_evaluation: int = 0
    ) -> None:
        name = "TruncationSelectionPolicy"
        pct = _whole(truncation_percentage, "truncation_percentage", name, 1)
        if pct > 99:
            raise ConfigError(f"{name}: truncation_percentage must be between 1 and 99, not {pct}")
        super().__init__(
            PolicySpec(
                self.POLICY_NAME,
                _whole(evaluation_interval, "evaluation_interval", name, 1),
                _whole(delay_evaluation, "delay_evaluation", name, 0),
                truncation_percentage=pct,
            )
        )

    @property
    def truncation_percentage(self) -> int:
        return int(self._spec.truncation_percentage or 0)


class NoTerminationPolicy(EarlyTerminationPolicy):
    """Every run goes to its end (the default; the reference's name ``"Default"``)."""

    POLICY_NAME = NO_POLICY

    def __init__(self) -> None:
        super().__init__(PolicySpec(NO_POLICY))


POLICIES: dict[str, type[EarlyTerminationPolicy]] = {
    cls.POLICY_NAME.lower(): cls
    for cls in (BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, NoTerminationPolicy)
}


def policy_from_json(data: Mapping[str, Any]) -> EarlyTerminationPolicy:
    """A policy object back from its ``policy_config`` (a stored sweep)."""
    cls = POLICIES.get(str(data.get("name", "")).lower())
    if cls is None:
        raise ConfigError(f"unknown early-termination policy {data.get('name')!r}")
    props = dict(data.get("properties") or {})
    props.pop("exclude_finished_jobs", None)
    return cls(**props)
