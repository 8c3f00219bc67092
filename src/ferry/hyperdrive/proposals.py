"""What the next child of a sweep gets: a random draw, the next grid point, or a proposal.

Random values come from the sweep's seed and the child's number alone; the grid goes through its
combinations in order, leaving out those already run (by this sweep, or by a sweep it resumes
from); a Bayesian proposal is made from the results reported so far (the children that ended
with values, and the inherited ones) with the running children as pending points. All of it is
computed from what the run history holds, so a restarted controller proposes as the first would.

Example::

    sampler = Sampler(spec)
    sampler.next(index=3, children=known, inherited=[])   # {'--alpha': 0.41…} or None (grid done)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from ferry.hyperdrive.draws import draw_point, grid_points
from ferry.hyperdrive.expressions import Scalar
from ferry.hyperdrive.state import Child
from ferry.hyperdrive.sweep import SweepSpec

#: an inherited result: the values an earlier sweep's child had, and what it logged
Inherited = tuple[Mapping[str, Scalar], tuple[float, ...]]


class Sampler:
    """The values of a sweep's next child (it keeps only the grid's position)."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self._grid: Iterator[dict[str, Scalar]] | None = None

    def next(
        self, index: int, children: Sequence[Child], inherited: Sequence[Inherited]
    ) -> dict[str, Scalar] | None:
        """Child ``index``'s values; None when a grid has no combination left."""
        sampling = self.spec.sampling
        if sampling.method == "GRID":
            if self._grid is None:
                done = [dict(c.params) for c in children]
                done += [dict(p) for p, values in inherited if values]
                self._grid = grid_points(sampling.space, done)
            return next(self._grid, None)
        if sampling.method == "BayesianOptimization":
            from ferry.hyperdrive.bayesian import propose

            maximize = self.spec.maximize
            history = [(c.params, c.best(maximize)) for c in children if c.ended and c.values]
            history += [(p, max(v) if maximize else min(v)) for p, v in inherited if v]
            return propose(
                sampling.space,
                [(p, float(v)) for p, v in history if v is not None],
                [c.params for c in children if not c.ended],
                maximize,
                self.spec.seed,
                index,
            )
        return draw_point(sampling.space, self.spec.seed, index)
