"""Early-termination decisions (pure): the reference's Bandit, Median stopping and Truncation
selection rules over the primary metric's values of each run.

Every value a run logs of the primary metric is one *interval*. A policy applies to a run at its
interval ``N`` when ``N`` is a multiple of ``evaluation_interval`` and ``N >= delay_evaluation``.
At interval ``N`` a run is compared with every run's performance *up to interval N* (its first
``N`` values; fewer if it logged fewer), so a young run is never judged against what older runs
reached later, and the decision does not depend on when the controller looked:

- **Bandit** — the best run's best value up to ``N`` is ``best``; the run's own best up to ``N``
  is ``y``. Maximizing, the run is cut when ``y < best / (1 + slack_factor)`` (the reference's
  ``y·(1 + slack) < best``) or ``y < best − slack_amount``; minimizing, when
  ``y > best · (1 + slack_factor)`` or ``y > best + slack_amount``.
- **Median stopping** — cut when ``y`` is worse than the median, over runs, of each run's
  running average of its first ``N`` values (Google Vizier's rule).
- **Truncation selection** — rank every run by its best up to ``N``; cut the run when it is among
  the lowest ``truncation_percentage`` % (``floor(runs × pct / 100)`` runs; ties stay).

Example::

    bandit = PolicySpec("Bandit", slack_factor=0.2)
    evaluate(bandit, True, own=[0.6], others=[[0.8]], interval=1).terminate   # 0.6·1.2 < 0.8: True
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NO_POLICY = "Default"


@dataclass(frozen=True)
class PolicySpec:
    """An early-termination policy as plain data (``name`` is the reference's)."""

    name: str = NO_POLICY  # "Bandit", "MedianStopping", "TruncationSelection" or "Default"
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The reference's ``policy_config``."""
        if self.name == NO_POLICY:
            return {"name": NO_POLICY}
        properties: dict[str, Any] = {
            "evaluation_interval": self.evaluation_interval,
            "delay_evaluation": self.delay_evaluation,
        }
        if self.name == "Bandit":
            if self.slack_factor is not None:
                properties["slack_factor"] = self.slack_factor
            else:
                properties["slack_amount"] = self.slack_amount
        if self.name == "TruncationSelection":
            properties["truncation_percentage"] = self.truncation_percentage
            properties["exclude_finished_jobs"] = False
        return {"name": self.name, "properties": properties}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicySpec:
        props = dict(data.get("properties") or {})
        props.pop("exclude_finished_jobs", None)
        return cls(name=str(data.get("name") or NO_POLICY), **props)

    def applies_at(self, interval: int) -> bool:
        """True when the policy is evaluated at a run's ``interval``-th value."""
        return (
            self.name != NO_POLICY
            and interval >= 1
            and interval % self.evaluation_interval == 0
            and interval >= self.delay_evaluation
        )


@dataclass(frozen=True)
class Verdict:
    """A run to cut: at which interval, and why (said in the sweep's log)."""

    interval: int
    reason: str


def best_of(values: Sequence[float], maximize: bool) -> float:
    return max(values) if maximize else min(values)


def _worse(a: float, b: float, maximize: bool) -> bool:
    """True when ``a`` is strictly worse than ``b``."""
    return a < b if maximize else a > b


def evaluate(
    policy: PolicySpec,
    maximize: bool,
    own: Sequence[float],
    others: Sequence[Sequence[float]],
    interval: int,
) -> Verdict | None:
    """The decision about a run at its ``interval``-th value (None: it goes on)."""
    if not policy.applies_at(interval) or len(own) < interval:
        return None
    mine = list(own[:interval])
    peers = [list(values[:interval]) for values in others if values]
    y = best_of(mine, maximize)
    if policy.name == "Bandit":
        return _bandit(
            policy, maximize, y, [best_of(p, maximize) for p in [mine, *peers]], interval
        )
    if policy.name == "MedianStopping":
        averages = [statistics.fmean(p) for p in [mine, *peers]]
        median = statistics.median(averages)
        if _worse(y, median, maximize):
            return Verdict(
                interval,
                f"its best {y:g} is worse than the median {median:g} of the running averages "
                f"of {len(averages)} runs at interval {interval} (MedianStopping)",
            )
        return None
    if policy.name == "TruncationSelection":
        return _truncation(policy, maximize, y, [best_of(p, maximize) for p in peers], interval)
    raise ValueError(f"unknown policy {policy.name!r}")


def _bandit(
    policy: PolicySpec, maximize: bool, y: float, bests: list[float], interval: int
) -> Verdict | None:
    best = best_of(bests, maximize)
    if policy.slack_factor is not None:
        factor = 1 + policy.slack_factor
        limit = best / factor if maximize else best * factor
        slack = f"slack_factor {policy.slack_factor:g}"
    else:
        amount = float(policy.slack_amount or 0.0)
        limit = best - amount if maximize else best + amount
        slack = f"slack_amount {amount:g}"
    if _worse(y, limit, maximize):
        side = "below" if maximize else "above"
        return Verdict(
            interval,
            f"its best {y:g} is {side} {limit:g}, the best run's {best:g} with {slack}, "
            f"at interval {interval} (Bandit)",
        )
    return None


def _truncation(
    policy: PolicySpec, maximize: bool, y: float, peers: list[float], interval: int
) -> Verdict | None:
    runs = len(peers) + 1
    cut = math.floor(runs * (policy.truncation_percentage or 0) / 100)
    if cut < 1:
        return None
    better = sum(_worse(y, p, maximize) for p in peers)
    if better >= runs - cut:
        return Verdict(
            interval,
            f"its best {y:g} is among the lowest {policy.truncation_percentage}% of "
            f"{runs} runs at interval {interval} (TruncationSelection)",
        )
    return None


def first_verdict(
    policy: PolicySpec,
    maximize: bool,
    own: Sequence[float],
    others: Sequence[Sequence[float]],
    seen: int,
) -> Verdict | None:
    """Evaluate every interval the run reached since ``seen`` (values arrive in batches, but
    each one is an interval); the first that cuts the run, or None."""
    for interval in range(seen + 1, len(own) + 1):
        verdict = evaluate(policy, maximize, own, others, interval)
        if verdict is not None:
            return verdict
    return None
