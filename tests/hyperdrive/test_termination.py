"""Early-termination formulas against worked examples, and the policies' validation (pure)."""

from __future__ import annotations

import pytest

from ferry.errors import ConfigError
from ferry.hyperdrive import (
    BanditPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from ferry.hyperdrive.policy import policy_from_json
from ferry.hyperdrive.termination import PolicySpec, evaluate, first_verdict


def cut(policy: PolicySpec, maximize: bool, own: list[float], others: list[list[float]]) -> bool:
    return evaluate(policy, maximize, own, others, len(own)) is not None


def test_bandit_slack_factor_maximize_is_the_references_example() -> None:
    # the reference: best AUC 0.8, slack_factor 0.2 → a run below 0.8 / 1.2 = 0.667 is cut
    bandit = BanditPolicy(slack_factor=0.2).spec
    assert cut(bandit, True, [0.6], [[0.8]])  # 0.6 · 1.2 = 0.72 < 0.8
    assert not cut(bandit, True, [0.7], [[0.8]])  # 0.84 ≥ 0.8
    slack10 = BanditPolicy(slack_factor=0.1).spec  # "slack 0.1 ⇒ 91%"
    assert cut(slack10, True, [0.9], [[1.0]]) and not cut(slack10, True, [0.91], [[1.0]])


def test_bandit_slack_amount_and_the_minimize_mirror() -> None:
    amount = BanditPolicy(slack_amount=0.2).spec
    assert cut(amount, True, [0.59], [[0.8]]) and not cut(amount, True, [0.61], [[0.8]])
    assert cut(amount, False, [0.71], [[0.5]]) and not cut(amount, False, [0.69], [[0.5]])
    factor = BanditPolicy(slack_factor=0.2).spec
    assert cut(factor, False, [0.61], [[0.5]])  # > 0.5 · 1.2
    assert not cut(factor, False, [0.59], [[0.5]])


def test_the_run_itself_can_be_the_best_and_its_best_value_counts() -> None:
    bandit = BanditPolicy(slack_factor=0.1).spec
    assert not cut(bandit, True, [0.9], [[0.5]])
    assert not cut(bandit, True, [0.95, 0.2], [[0.9, 0.9]])  # its best so far, 0.95


def test_a_run_is_compared_with_the_others_only_up_to_its_own_interval() -> None:
    bandit = BanditPolicy(slack_factor=0.1).spec
    # at interval 1 the other run had 0.5; its later 0.99 does not count yet
    assert not cut(bandit, True, [0.5], [[0.5, 0.99]])
    assert cut(bandit, True, [0.5, 0.5], [[0.5, 0.99]])


def test_evaluation_interval_and_delay_choose_the_intervals() -> None:
    spec = BanditPolicy(slack_amount=0.0, evaluation_interval=2, delay_evaluation=3).spec
    assert [n for n in range(1, 10) if spec.applies_at(n)] == [4, 6, 8]
    own, other = [0.1] * 5, [[1.0] * 5]
    assert [n for n in range(1, 6) if evaluate(spec, True, own, other, n)] == [4]
    verdict = first_verdict(spec, True, own, other, seen=0)
    assert verdict is not None and verdict.interval == 4
    assert first_verdict(spec, True, own, other, seen=4) is None  # 5 is not evaluated
    assert not NoTerminationPolicy().spec.applies_at(1)


def test_median_stopping_against_the_running_averages() -> None:
    median = MedianStoppingPolicy().spec
    # averages up to 3: own 0.6, others 2.0 and 2.0 → median 2.0; own best 0.7 < 2.0
    assert cut(median, True, [0.5, 0.6, 0.7], [[1, 2, 3], [2, 2, 2]])
    # averages up to 2: 0.5 (own), 1.5, 2.0, 0.2 → median 1.0; own best 1.4 ≥ 1.0
    assert not cut(median, True, [-0.4, 1.4], [[1, 2, 9], [2, 2], [0.2]])
    # minimizing: own best 3 is above the median 2 of the averages (5, 2, 1)
    assert cut(median, False, [7, 3], [[2, 2], [1, 1]])


def test_truncation_selection_cuts_the_lowest_percentage() -> None:
    trunc20 = TruncationSelectionPolicy(truncation_percentage=20).spec
    peers = [[0.9], [0.8], [0.7], [0.6]]
    assert cut(trunc20, True, [0.1], peers)  # 5 runs: floor(5 · 20%) = 1, and it is the worst
    assert not cut(trunc20, True, [0.65], peers)
    assert not cut(trunc20, True, [0.1], peers[:3])  # 4 runs: floor(0.8) = 0 cut
    trunc50 = TruncationSelectionPolicy(truncation_percentage=50).spec
    assert cut(trunc50, True, [0.75], peers[:3])  # 4 runs: the lowest 2; 0.75 is second lowest
    assert not cut(trunc50, True, [0.85], peers[:3])
    assert cut(trunc50, False, [0.85], peers[:3])  # minimizing, a high value is bad


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: BanditPolicy(), "exactly one of slack_factor or slack_amount"),
        (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.1), "exactly one"),
        (lambda: BanditPolicy(slack_factor=0.1, evaluation_interval=1.5), "evaluation_interval"),
        (lambda: BanditPolicy(slack_factor=0.1, evaluation_interval=0), "at least 1"),
        (lambda: BanditPolicy(slack_factor=-1), "slack_factor"),
        (lambda: MedianStoppingPolicy(delay_evaluation="5"), "delay_evaluation"),
        (lambda: TruncationSelectionPolicy(0), "truncation_percentage"),
        (lambda: TruncationSelectionPolicy(100), "between 1 and 99"),
        (lambda: TruncationSelectionPolicy(20.0), "truncation_percentage"),
    ],
)
def test_bad_policy_arguments_name_the_argument(make, named: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=named):
        make()


def test_policies_keep_the_references_policy_config() -> None:
    assert NoTerminationPolicy().to_json() == {"name": "Default"}
    assert BanditPolicy(slack_factor=0.1, delay_evaluation=5).to_json() == {
        "name": "Bandit",
        "properties": {"evaluation_interval": 1, "delay_evaluation": 5, "slack_factor": 0.1},
    }
    trunc = TruncationSelectionPolicy(10, evaluation_interval=2)
    assert trunc.to_json()["properties"] == {
        "evaluation_interval": 2,
        "delay_evaluation": 0,
        "truncation_percentage": 10,
        "exclude_finished_jobs": False,
    }
    assert policy_from_json(trunc.to_json()) == trunc
