"""The reference's sampling classes: Random, Grid and Bayesian over a parameter space.

Each constructor checks the space as the reference does (Grid accepts only ``choice``; Bayesian
only ``choice``, ``uniform`` and ``quniform``, choice values all text or all numbers, quniform
with whole arguments and at most 100,000 points) and keeps a frozen :class:`SamplingSpec` — what
the sweep controller consumes. ``properties={"seed": N}`` makes the sampled values
reproducible (without it, a seed is chosen at submit and kept with the sweep).

Example::

    RandomParameterSampling({"--lr": loguniform(-6, -1), "--batch": choice(16, 32)},
                            properties={"seed": 7})
    GridParameterSampling({"--kernel": choice("linear", "rbf"), "--C": choice(0.1, 1, 10)})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ferry.errors import ConfigError
from ferry.hyperdrive.draws import Space, grid_size
from ferry.hyperdrive.expressions import ParameterExpression, as_expression

_PROPERTY_KEYS = {"seed", "rule"}


@dataclass(frozen=True)
class SamplingSpec:
    """A sampling method over a space, as plain data (``method`` is the reference's name)."""

    method: str  # "RANDOM", "GRID" or "BayesianOptimization"
    space: Space
    seed: int | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.space)

    def to_json(self) -> dict[str, Any]:
        """The reference's ``generator_config``."""
        data: dict[str, Any] = {
            "name": self.method,
            "parameter_space": {name: expr.to_json() for name, expr in self.space},
        }
        if self.properties:
            data["properties"] = dict(self.properties)
        return data


class HyperParameterSampling:
    """Base of the sampling classes (the reference's abstract class)."""

    SAMPLING_NAME: ClassVar[str] = ""
    #: the distributions this method accepts (None: every one)
    SUPPORTED: ClassVar[frozenset[str] | None] = None

    def __init__(
        self, parameter_space: Mapping[str, Any], properties: Mapping[str, Any] | None = None
    ) -> None:
        what = type(self).__name__
        if not isinstance(parameter_space, Mapping) or not parameter_space:
            raise ConfigError(
                f"{what} needs a parameter_space: a non-empty dict of names to expressions, "
                "like {'--alpha': uniform(0, 1)}"
            )
        space: list[tuple[str, ParameterExpression]] = []
        for name, value in parameter_space.items():
            if not isinstance(name, str) or not name.strip("-") or any(c.isspace() for c in name):
                raise ConfigError(
                    f"{what}: parameter names must be non-empty text without spaces, like "
                    f"'--alpha', not {name!r}"
                )
            expression = as_expression(value, f"{what}: parameter {name!r}")
            self._check(name, expression)
            space.append((name, expression))
        bare = [name.lstrip("-") for name, _ in space]
        clash = sorted({b for b in bare if bare.count(b) > 1})
        if clash:
            raise ConfigError(
                f"{what}: parameters {clash} are named twice (with and without dashes); each "
                "becomes the argument --name, so name each once"
            )
        props = dict(properties or {})
        unknown = set(props) - _PROPERTY_KEYS
        if unknown:
            raise ConfigError(
                f"{what}: unknown properties {sorted(unknown)}; ferry reads 'seed' (a whole "
                "number that makes the sampled values reproducible)"
            )
        seed = props.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"{what}: properties['seed'] must be a whole number, not {seed!r}")
        rule = props.get("rule", "random")
        if rule != "random":
            raise ConfigError(
                f"{what}: properties['rule']={rule!r} is not supported by ferry; use 'random'"
            )
        self._parameter_space = {name: expr.to_json() for name, expr in space}
        self._properties = props or None
        self._spec = SamplingSpec(self.SAMPLING_NAME, tuple(space), seed, props)

    def _check(self, name: str, expression: ParameterExpression) -> None:
        if self.SUPPORTED is not None and expression.kind not in self.SUPPORTED:
            allowed = ", ".join(sorted(self.SUPPORTED))
            raise ConfigError(
                f"{type(self).__name__}: parameter {name!r} is {expression.kind}(…), but this "
                f"sampling method expects only the following distributions: [{allowed}]"
            )

    @property
    def spec(self) -> SamplingSpec:
        return self._spec

    def to_json(self) -> dict[str, Any]:
        """The reference's ``generator_config`` dict."""
        return self._spec.to_json()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HyperParameterSampling) and self._spec == other._spec

    def __hash__(self) -> int:
        return hash((self.SAMPLING_NAME, self._spec.space))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._parameter_space!r})"


class RandomParameterSampling(HyperParameterSampling):
    """Independent random draws from any of the distributions."""

    SAMPLING_NAME = "RANDOM"


class GridParameterSampling(HyperParameterSampling):
    """Every combination of the ``choice`` values (a sweep stops when the grid is done)."""

    SAMPLING_NAME = "GRID"
    SUPPORTED = frozenset({"choice"})

    def _check(self, name: str, expression: ParameterExpression) -> None:
        super()._check(name, expression)
        _check_choice(type(self).__name__, name, expression)

    @property
    def size(self) -> int:
        return grid_size(self.spec.space)


class BayesianParameterSampling(HyperParameterSampling):
    """Bayesian optimisation (optuna's TPE) proposing from the results already reported.

    No early-termination policy may be combined with it (as in the reference); fewer runs at a
    time give better proposals, since each proposal sees only the results reported so far.
    """

    SAMPLING_NAME = "BayesianOptimization"
    SUPPORTED = frozenset({"choice", "uniform", "quniform"})

    def _check(self, name: str, expression: ParameterExpression) -> None:
        super()._check(name, expression)
        what = type(self).__name__
        if expression.kind == "choice":
            _check_choice(what, name, expression)
        elif expression.kind == "quniform":
            low, high, q = expression.args
            if not all(isinstance(a, int) for a in (low, high, q)):
                raise ConfigError(
                    f"{what}: parameter {name!r}: expected quniform arguments to be whole "
                    f"numbers (int), got {expression!r}"
                )
            if (high - low) / q > 100_000:
                raise ConfigError(
                    f"{what}: parameter {name!r}: too many discrete points for quniform "
                    "distribution; use a larger q or uniform instead"
                )


def _check_choice(what: str, name: str, expression: ParameterExpression) -> None:
    values = expression.options
    for value in values:
        if type(value) not in (int, str, float):
            raise ConfigError(
                f"{what}: parameter {name!r}: 'choice' values should be 'int', 'string' or "
                f"'float', not {value!r}"
            )
    texts = sum(isinstance(v, str) for v in values)
    if texts not in (0, len(values)):
        raise ConfigError(
            f"{what}: parameter {name!r}: either all or none of the 'choice' values should "
            "be 'str' type"
        )


SAMPLINGS: dict[str, type[HyperParameterSampling]] = {
    cls.SAMPLING_NAME.lower(): cls
    for cls in (RandomParameterSampling, GridParameterSampling, BayesianParameterSampling)
}


def sampling_from_json(data: Mapping[str, Any]) -> HyperParameterSampling:
    """A sampling object back from its ``generator_config`` (a stored sweep)."""
    cls = SAMPLINGS.get(str(data.get("name", "")).lower())
    if cls is None:
        raise ConfigError(f"unknown sampling method {data.get('name')!r} in a stored sweep")
    return cls(data.get("parameter_space") or {}, data.get("properties"))
