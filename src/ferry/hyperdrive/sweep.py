"""A sweep as plain data (:class:`SweepSpec`), as it is stored, and its children's arguments.

The HyperDrive run's stored definition is the reference's wire shape (``generator_config``,
``policy_config``, ``primary_metric_config``, ``max_total_jobs``, ``max_concurrent_jobs``,
``max_duration_minutes``, ``platform_config.Definition.Overrides`` — the children's run
definition), plus ferry's ``seed``. The controller reads it back with :meth:`SweepSpec.from_stored`
and never sees a public class.

A child's arguments are the base arguments with every parameter of the space removed (and the
value after it), then ``--name value`` per sampled parameter, in the order of the space
(:func:`child_arguments`). A name without dashes gets two: ``lr`` → ``--lr``.

Example::

    child_arguments(["--data", "d.csv", "--alpha", 1], {"--alpha": 0.5, "lr": 0.1})
    # ['--data', 'd.csv', '--alpha', 0.5, '--lr', 0.1]
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferry.hyperdrive.draws import Space
from ferry.hyperdrive.expressions import Scalar, as_expression
from ferry.hyperdrive.sampling import SamplingSpec
from ferry.hyperdrive.termination import PolicySpec

#: the reference's service limit: longer sweeps are clamped (with a warning)
MAX_DURATION_MINUTES = 10080
RUN_TYPE = "hyperdrive"


@dataclass(frozen=True)
class SweepSpec:
    """Everything the controller needs to run a sweep."""

    sampling: SamplingSpec
    policy: PolicySpec
    metric: str
    maximize: bool
    max_total_runs: int
    max_concurrent_runs: int
    max_duration_minutes: float = MAX_DURATION_MINUTES
    child_definition: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    resume_from: tuple[str, ...] = ()

    @property
    def goal(self) -> str:
        return "maximize" if self.maximize else "minimize"

    def to_stored(self) -> dict[str, Any]:
        """The run definition kept with the HyperDrive run (the reference's field names)."""
        return {
            "generator_config": self.sampling.to_json(),
            "policy_config": self.policy.to_json(),
            "primary_metric_config": {"name": self.metric, "goal": self.goal},
            "max_total_jobs": self.max_total_runs,
            "max_concurrent_jobs": self.max_concurrent_runs,
            "max_duration_minutes": self.max_duration_minutes,
            "platform": "AML",
            "platform_config": {"Definition": {"Overrides": dict(self.child_definition)}},
            "resume_from": list(self.resume_from),
            "seed": self.seed,
        }

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> SweepSpec:
        generator = data["generator_config"]
        space: Space = tuple(
            (str(name), as_expression(expr, f"stored parameter {name!r}"))
            for name, expr in dict(generator["parameter_space"]).items()
        )
        properties = dict(generator.get("properties") or {})
        seed = int(data.get("seed", properties.get("seed") or 0))
        metric = data["primary_metric_config"]
        return cls(
            sampling=SamplingSpec(
                str(generator["name"]), space, properties.get("seed"), properties
            ),
            policy=PolicySpec.from_json(data.get("policy_config") or {}),
            metric=str(metric["name"]),
            maximize=str(metric["goal"]).lower() == "maximize",
            max_total_runs=int(data["max_total_jobs"]),
            max_concurrent_runs=int(data["max_concurrent_jobs"]),
            max_duration_minutes=float(data.get("max_duration_minutes", MAX_DURATION_MINUTES)),
            child_definition=dict(data["platform_config"]["Definition"]["Overrides"]),
            seed=seed,
            resume_from=tuple(str(r) for r in data.get("resume_from") or ()),
        )


def argument_name(name: str) -> str:
    """How a parameter is written on the command line: ``--lr`` for ``lr`` or ``--lr``."""
    return name if name.startswith("-") else f"--{name}"


def remove_parameters(
    arguments: Sequence[Any], names: Sequence[str]
) -> tuple[list[Any], list[str]]:
    """``arguments`` without the parameters of the space (and the value after each), and the
    ones removed — the reference compares names without their leading dashes."""
    wanted = {n.lstrip("-") for n in names}
    kept: list[Any] = []
    removed: list[str] = []
    i = 0
    while i < len(arguments):
        item = arguments[i]
        if isinstance(item, str) and item.startswith("-") and not _is_number(item):
            key, eq, _ = item.partition("=")
            if key.lstrip("-") in wanted:
                removed.append(key)
                nxt = arguments[i + 1] if i + 1 < len(arguments) else None
                takes_value = not eq and nxt is not None and not _is_flag(nxt)
                i += 2 if takes_value else 1
                continue
        kept.append(item)
        i += 1
    return kept, removed


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_flag(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("-") and not _is_number(value)


def child_arguments(base: Sequence[Any], params: Mapping[str, Scalar]) -> list[Any]:
    """The child's arguments: the base ones, then ``--name value`` per sampled parameter."""
    kept, _ = remove_parameters(base, list(params))
    for name, value in params.items():
        kept += [argument_name(name), value]
    return kept


def child_definition(base: Mapping[str, Any], params: Mapping[str, Scalar]) -> dict[str, Any]:
    """The child's run definition: the sweep's, with the sampled values in its arguments (or
    at the end of its command, for a ScriptRunConfig given a ``command``)."""
    definition = dict(base)
    command = base.get("command")
    if isinstance(command, list | tuple) and command:
        definition["command"] = [str(a) for a in child_arguments(list(command), params)]
    elif isinstance(command, str) and command:
        pairs = [str(a) for name, value in params.items() for a in (argument_name(name), value)]
        definition["command"] = f"{command} {shlex.join(pairs)}"
    else:
        definition["arguments"] = child_arguments(list(base.get("arguments") or []), params)
    return definition
