"""Random and grid sampling (pure): the values of child ``n`` of a sweep, from its seed.

Child ``n``'s random values come from a generator seeded with ``(seed, n)`` alone, so the same
seed gives the same values whatever order the children start in, however many controllers a
sweep went through (a controller restarted after ``kill -9`` draws exactly what the first
would have), and draws may repeat a combination, as the reference's do. The distributions are
the reference's (hyperopt's): ``loguniform(a, b)`` is ``exp(uniform(a, b))``, the ``q`` forms
round to a multiple of ``q``.

A grid is the cartesian product of the ``choice`` values, in the order the space names them;
point ``i`` is computed from ``i`` without listing the grid.

Example::

    space = (("--lr", loguniform(-6, -1)), ("--batch", choice(16, 32)))
    draw_point(space, seed=7, index=0)   # {'--lr': 0.0132…, '--batch': 32}, every time
    grid_point((("--a", choice(1, 2)), ("--b", choice("x", "y"))), 3)   # {'--a': 2, '--b': 'y'}
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from ferry.hyperdrive.expressions import ParameterExpression, Scalar

#: a parameter space, in the order its names were given
Space = tuple[tuple[str, ParameterExpression], ...]


def _quantize(value: float, q: float | int) -> int | float:
    """``round(value / q) * q``; a whole ``q`` gives a whole number (``--batch 32``, not
    ``32.0``, which an ``argparse`` ``type=int`` would refuse)."""
    result = round(value / q) * q
    if isinstance(q, int) and not isinstance(q, bool):
        return int(result)
    return float(result)


def draw(expression: ParameterExpression, rng: random.Random) -> Scalar:
    """One value of ``expression``."""
    kind, args = expression.kind, expression.args
    if kind == "choice":
        return rng.choice(expression.options)
    if kind == "randint":
        return rng.randrange(args[0])
    if kind == "uniform":
        return rng.uniform(args[0], args[1])
    if kind == "quniform":
        return _quantize(rng.uniform(args[0], args[1]), args[2])
    if kind == "loguniform":
        return math.exp(rng.uniform(args[0], args[1]))
    if kind == "qloguniform":
        return _quantize(math.exp(rng.uniform(args[0], args[1])), args[2])
    if kind == "normal":
        return rng.gauss(args[0], args[1])
    if kind == "qnormal":
        return _quantize(rng.gauss(args[0], args[1]), args[2])
    if kind == "lognormal":
        return math.exp(rng.gauss(args[0], args[1]))
    if kind == "qlognormal":
        return _quantize(math.exp(rng.gauss(args[0], args[1])), args[2])
    raise ValueError(f"unknown distribution {kind!r}")


def draw_point(space: Space, seed: int, index: int) -> dict[str, Scalar]:
    """The random values of child ``index`` of a sweep seeded with ``seed``."""
    rng = random.Random(f"ferry-sweep/{seed}/{index}")
    return {name: draw(expression, rng) for name, expression in space}


def grid_size(space: Space) -> int:
    """How many points the grid has (the product of the choices' lengths)."""
    return math.prod(len(expression.options) for _, expression in space)


def grid_point(space: Space, index: int) -> dict[str, Scalar]:
    """Point ``index`` of the grid (the last name varies fastest, as ``itertools.product``)."""
    point: dict[str, Scalar] = {}
    for name, expression in reversed(space):
        options = expression.options
        index, position = divmod(index, len(options))
        point[name] = options[position]
    return {name: point[name] for name, _ in space}


def grid_points(
    space: Space, skip: Sequence[dict[str, Scalar]] = ()
) -> Iterator[dict[str, Scalar]]:
    """Every point of the grid in order, leaving out those in ``skip`` (already run)."""
    done = {point_key(p) for p in skip}
    for index in range(grid_size(space)):
        point = grid_point(space, index)
        if point_key(point) not in done:
            yield point


def point_key(point: dict[str, Scalar]) -> tuple[tuple[str, str], ...]:
    """A hashable form of a point (``1`` and ``1.0`` are the same value, as in JSON)."""
    return tuple(sorted((name, repr(_plain(value))) for name, value in point.items()))


def _plain(value: Scalar) -> Scalar:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
