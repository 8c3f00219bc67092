"""Bayesian proposals through optuna, from the reported results only (pure, deterministic)."""

from __future__ import annotations

from ferry.hyperdrive import choice, quniform, uniform
from ferry.hyperdrive.bayesian import propose
from ferry.hyperdrive.draws import draw_point

SPACE = (("--x", uniform(0, 1)), ("--k", choice("a", "b")), ("--n", quniform(10, 50, 5)))


def score(p: dict) -> float:  # type: ignore[type-arg]
    return -((p["--x"] - 0.8) ** 2) + (0.5 if p["--k"] == "b" else 0.0)


def test_proposals_lie_in_the_space_and_repeat_for_the_same_history() -> None:
    # past optuna's 10 random start-up trials, each proposal depends on the results
    history = [(draw_point(SPACE, 1, i), score(draw_point(SPACE, 1, i))) for i in range(12)]
    first = propose(SPACE, history, [], maximize=True, seed=4, index=12)
    assert first == propose(SPACE, history, [], maximize=True, seed=4, index=12)
    assert 0 <= first["--x"] <= 1 and first["--k"] in ("a", "b")
    assert first["--n"] in range(10, 51, 5) and isinstance(first["--n"], int)
    more = [*history, (first, score(first))]
    assert propose(SPACE, more, [], maximize=True, seed=4, index=13) != propose(
        SPACE, history, [], maximize=True, seed=4, index=13
    )


def test_proposals_move_towards_the_reported_optimum() -> None:
    history = [(draw_point(SPACE, 2, i), score(draw_point(SPACE, 2, i))) for i in range(30)]
    running = [draw_point(SPACE, 3, 0)]
    proposals = [propose(SPACE, history, running, True, seed=9, index=30 + i) for i in range(10)]
    random_points = [draw_point(SPACE, 5, i) for i in range(10)]

    def distance(points: list) -> float:  # type: ignore[type-arg]
        return sum(abs(p["--x"] - 0.8) for p in points) / len(points)

    assert distance(proposals) < distance(random_points)
    assert sum(p["--k"] == "b" for p in proposals) >= 7


def test_results_outside_the_space_are_left_out() -> None:
    history = [({"--x": 0.5, "--k": "zzz", "--n": 10}, 1.0), ({"--other": 1}, 2.0)]
    point = propose(SPACE, history, [{"--x": "text"}], maximize=False, seed=1, index=0)
    assert set(point) == {"--x", "--k", "--n"}
