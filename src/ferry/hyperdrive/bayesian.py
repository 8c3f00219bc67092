"""Bayesian proposals with optuna's TPE sampler, from the results already reported.

Nothing is kept between proposals: each one builds an in-memory optuna study from the sweep's
history as the run history holds it — the children that reported the primary metric, with
their best value, and the children still running, as optuna's *running* trials (its
"constant liar" keeps parallel proposals apart) — and asks for one point. So a restarted
controller proposes exactly as the first would have, and a proposal never uses a result that
was not reported. The sampler's seed is the sweep's seed plus the child's number, so a sweep
run one child at a time is reproducible.

``choice`` maps to optuna's categorical distribution, ``uniform`` to a float range, and
``quniform(low, high, q)`` to the whole multiples of ``q`` between them.

Example::

    propose(space, history=[({"--lr": 0.1}, 0.8)], running=[], maximize=True, seed=1, index=1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ferry.hyperdrive.draws import Space
from ferry.hyperdrive.expressions import ParameterExpression, Scalar

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

#: one reported result: the child's parameters and its best primary metric
Result = tuple[Mapping[str, Scalar], float]


def _distribution(expression: ParameterExpression) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if expression.kind == "choice":
        return CategoricalDistribution(list(expression.options))
    if expression.kind == "uniform":
        low, high = expression.args
        return FloatDistribution(float(low), float(high))
    if expression.kind == "quniform":
        low, high, q = expression.args
        return IntDistribution(round(low / q), round(high / q))
    raise ValueError(f"{expression.kind} is not a Bayesian distribution")


def _internal(expression: ParameterExpression, value: Scalar) -> Any:
    """A child's value as optuna's distribution holds it (quniform: the multiple of q)."""
    if expression.kind == "quniform":
        return round(float(value or 0) / expression.args[2])
    if expression.kind == "uniform":
        return float(value or 0)
    return value


def _external(expression: ParameterExpression, value: Any) -> Scalar:
    if expression.kind == "quniform":
        return int(value) * int(expression.args[2])
    return value  # type: ignore[no-any-return]


def _fits(space: Space, params: Mapping[str, Scalar]) -> bool:
    """True when a result's parameters lie in this space (a warm start may bring others)."""
    for name, expression in space:
        if name not in params:
            return False
        value = params[name]
        if expression.kind == "choice" and value not in expression.options:
            return False
        if expression.kind != "choice" and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            return False
    return True


def propose(
    space: Space,
    history: Sequence[Result],
    running: Sequence[Mapping[str, Scalar]],
    maximize: bool,
    seed: int,
    index: int,
) -> dict[str, Scalar]:
    """The next point to try, given the reported results and the points still running."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {name: _distribution(expr) for name, expr in space}
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=(seed + index) % (2**32)),
    )
    trials = []
    for params, value in history:
        if _fits(space, params):
            trials.append(
                create_trial(
                    params={n: _internal(e, params[n]) for n, e in space},
                    distributions=distributions,
                    value=value,
                )
            )
    for params in running:
        if _fits(space, params):
            trials.append(
                create_trial(
                    params={n: _internal(e, params[n]) for n, e in space},
                    distributions=distributions,
                    state=TrialState.RUNNING,
                )
            )
    study.add_trials(trials)
    trial = study.ask(distributions)
    return {name: _external(expr, trial.params[name]) for name, expr in space}
