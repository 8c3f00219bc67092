"""Parameter expressions: the reference's ``choice``, ``uniform``, ``loguniform`` … (pure).

Each function checks its arguments as the reference does and returns a
:class:`ParameterExpression`, a frozen value that serializes to the reference's wire form
``[name, [args]]`` (``choice(1, 2)`` → ``["choice", [[1, 2]]]``) and compares equal to it, so code
that inspects an expression as the reference's list keeps working.

Example::

    space = {"--lr": loguniform(-6, -1), "--kernel": choice("linear", "rbf")}
    space["--lr"].to_json()          # ['loguniform', [-6, -1]]  (bounds in log space)
    parse_expression("uniform(0, 1)") == uniform(0, 1)   # the CLI's spelling
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ferry.errors import ConfigError

#: what a sampled value may be: it becomes a command-line argument and a JSON tag
Scalar = str | int | float | bool | None
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, eq=False)
class ParameterExpression:
    """One distribution of a parameter space: its ``kind`` and its arguments."""

    kind: str
    args: tuple[Any, ...]

    @property
    def options(self) -> tuple[Scalar, ...]:
        """The values of a ``choice`` (empty for the other kinds)."""
        return tuple(self.args[0]) if self.kind == "choice" else ()

    def to_json(self) -> list[Any]:
        """The reference's wire form: ``[name, [args]]``."""
        if self.kind == "choice":
            return ["choice", [list(self.args[0])]]
        return [self.kind, list(self.args)]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ParameterExpression):
            return self.to_json() == other.to_json()
        if isinstance(other, list | tuple):
            return bool(self.to_json() == json.loads(json.dumps(other, default=str)))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __getitem__(self, index: int) -> Any:  # the reference's expressions are lists
        return self.to_json()[index]

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        inner = self.options if self.kind == "choice" else self.args
        return f"{self.kind}({', '.join(repr(a) for a in inner)})"


def _number(value: Any, function: str, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{function}(): {name} must be a finite number, not {value!r}")
    return value


def _integral(value: Any, function: str) -> float | int:
    q = _number(value, function, "q")
    if not float(q).is_integer() or q <= 0:
        raise ConfigError(
            f"{function}(): q must be a positive whole number (like 1 or 5), not {q!r}"
        )
    return q


def _ordered(low: Any, high: Any, function: str, strict: bool) -> tuple[float | int, float | int]:
    lo, hi = _number(low, function, "min_value"), _number(high, function, "max_value")
    if lo > hi or (strict and lo == hi):
        sign = "<" if strict else "<="
        raise ConfigError(f"{function}(): needs min_value {sign} max_value, got {lo!r} and {hi!r}")
    return lo, hi


def choice(*options: Any) -> ParameterExpression:
    """A discrete set: ``choice(1, 2, 3)``, ``choice([1, 2, 3])`` or ``choice(range(1, 4))``."""
    if not options:
        raise ConfigError("choice() needs at least one value, like choice(0.1, 0.5)")
    values: Sequence[Any] = options
    if any(isinstance(o, range | list | tuple) for o in options):
        if len(options) > 1 or not options[0]:
            raise ConfigError(
                "choice() takes a non-empty single list, a non-empty single range() or "
                f"values separated by commas, not {options!r}"
            )
        values = list(options[0])
    for value in values:
        if not isinstance(value, _SCALARS) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise ConfigError(
                f"choice() values must be text, numbers, booleans or None, not {value!r} "
                "(a value becomes a command-line argument)"
            )
    return ParameterExpression("choice", (tuple(values),))


def randint(upper: Any) -> ParameterExpression:
    """A whole number in ``[0, upper)``."""
    if isinstance(upper, bool) or not isinstance(upper, int) or upper <= 0:
        raise ConfigError(f"randint(upper): upper must be a positive whole number, not {upper!r}")
    return ParameterExpression("randint", (upper,))


def uniform(min_value: Any, max_value: Any) -> ParameterExpression:
    """Uniform in ``[min_value, max_value]``."""
    return ParameterExpression("uniform", _ordered(min_value, max_value, "uniform", strict=True))


def quniform(min_value: Any, max_value: Any, q: Any) -> ParameterExpression:
    """``round(uniform(min_value, max_value) / q) * q``."""
    lo, hi = _ordered(min_value, max_value, "quniform", strict=True)
    return ParameterExpression("quniform", (lo, hi, _integral(q, "quniform")))


def loguniform(min_value: Any, max_value: Any) -> ParameterExpression:
    """``exp(uniform(min_value, max_value))``: the bounds are in log space, so the values lie
    in ``[e**min_value, e**max_value]`` (``loguniform(-6, -1)`` → 0.0025 … 0.37)."""
    return ParameterExpression(
        "loguniform", _ordered(min_value, max_value, "loguniform", strict=False)
    )


def qloguniform(min_value: Any, max_value: Any, q: Any) -> ParameterExpression:
    """``round(exp(uniform(min_value, max_value)) / q) * q`` (bounds in log space)."""
    lo, hi = _ordered(min_value, max_value, "qloguniform", strict=False)
    return ParameterExpression("qloguniform", (lo, hi, _integral(q, "qloguniform")))


def _normal_args(mu: Any, sigma: Any, function: str) -> tuple[float | int, float | int]:
    m, s = _number(mu, function, "mu"), _number(sigma, function, "sigma")
    if s < 0:
        raise ConfigError(f"{function}(): sigma must not be negative, got {s!r}")
    return m, s


def normal(mu: Any, sigma: Any) -> ParameterExpression:
    """Normally distributed with mean ``mu`` and standard deviation ``sigma``."""
    return ParameterExpression("normal", _normal_args(mu, sigma, "normal"))


def qnormal(mu: Any, sigma: Any, q: Any) -> ParameterExpression:
    """``round(normal(mu, sigma) / q) * q``."""
    m, s = _normal_args(mu, sigma, "qnormal")
    return ParameterExpression("qnormal", (m, s, _integral(q, "qnormal")))


def lognormal(mu: Any, sigma: Any) -> ParameterExpression:
    """``exp(normal(mu, sigma))``."""
    return ParameterExpression("lognormal", _normal_args(mu, sigma, "lognormal"))


def qlognormal(mu: Any, sigma: Any, q: Any) -> ParameterExpression:
    """``round(exp(normal(mu, sigma)) / q) * q``."""
    m, s = _normal_args(mu, sigma, "qlognormal")
    return ParameterExpression("qlognormal", (m, s, _integral(q, "qlognormal")))


FUNCTIONS = {
    f.__name__: f
    for f in (
        choice,
        randint,
        uniform,
        quniform,
        loguniform,
        qloguniform,
        normal,
        qnormal,
        lognormal,
        qlognormal,
    )
}


def as_expression(value: Any, where: str) -> ParameterExpression:
    """An expression given as one, or in the reference's wire form ``[name, [args]]``."""
    if isinstance(value, ParameterExpression):
        return value
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and value[0] in FUNCTIONS
        and isinstance(value[1], list | tuple)
    ):
        args = list(value[1])
        if value[0] == "choice":
            if len(args) != 1 or not isinstance(args[0], list | tuple):
                raise ConfigError(f"{where}: a choice is written ['choice', [[values…]]]")
            return choice(list(args[0]))
        try:
            return FUNCTIONS[value[0]](*args)
        except TypeError:
            raise ConfigError(f"{where}: {value[0]} takes other arguments than {args!r}") from None
    raise ConfigError(
        f"{where} must be a parameter expression such as choice(…), uniform(…) or "
        f"loguniform(…), not {value!r}"
    )


def parse_expression(text: str, where: str = "parameter") -> ParameterExpression:
    """Read an expression written as text (``"uniform(0, 1)"``, ``"choice('a', 'b')"``,
    ``"choice(range(1, 5))"``): only the ten functions and literal arguments, nothing runs."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        node = None
    if (
        not isinstance(node, ast.Call)
        or not isinstance(node.func, ast.Name)
        or node.func.id not in FUNCTIONS
        or node.keywords
    ):
        names = ", ".join(FUNCTIONS)
        raise ConfigError(
            f"{where}: {text!r} is not a parameter expression; write one of {names} with "
            "literal arguments, like \"uniform(0, 1)\" or \"choice('linear', 'rbf')\""
        )
    args = [_literal(arg, text, where) for arg in node.args]
    try:
        return FUNCTIONS[node.func.id](*args)
    except TypeError:
        raise ConfigError(f"{where}: {text!r} has the wrong number of arguments") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _literal(arg: ast.expr, text: str, where: str) -> Any:
    if (
        isinstance(arg, ast.Call)
        and isinstance(arg.func, ast.Name)
        and arg.func.id == "range"
        and not arg.keywords
    ):
        bounds = [_literal(a, text, where) for a in arg.args]
        if not 1 <= len(bounds) <= 3 or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in bounds
        ):
            raise ConfigError(f"{where}: range() in {text!r} takes 1 to 3 whole numbers")
        return range(*bounds)
    try:
        return ast.literal_eval(arg)
    except ValueError:
        raise ConfigError(
            f"{where}: the arguments of {text!r} must be literal values (numbers, 'text', "
            "lists or range(…))"
        ) from None
