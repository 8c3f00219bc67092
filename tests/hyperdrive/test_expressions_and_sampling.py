"""Parameter expressions, sampling classes and the draws (pure: no folders, no processes)."""

from __future__ import annotations

import math
import statistics

import pytest

from ferry.errors import ConfigError
from ferry.hyperdrive import (
    BayesianParameterSampling,
    GridParameterSampling,
    RandomParameterSampling,
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from ferry.hyperdrive.draws import draw_point, grid_point, grid_points, grid_size
from ferry.hyperdrive.expressions import parse_expression


def test_expressions_serialize_and_compare_as_the_references_lists() -> None:
    assert choice(1, 2, 3) == ["choice", [[1, 2, 3]]]
    assert choice([1, 2, 3]).to_json() == ["choice", [[1, 2, 3]]]
    assert choice(range(3)).to_json() == ["choice", [[0, 1, 2]]]
    assert uniform(0, 1) == ["uniform", [0, 1]]
    assert qloguniform(-2, 2, 1).to_json() == ["qloguniform", [-2, 2, 1]]
    assert randint(5)[0] == "randint"
    assert parse_expression("choice('linear', 'rbf')") == choice("linear", "rbf")
    assert parse_expression(" loguniform(-6, -1) ") == loguniform(-6, -1)
    assert parse_expression("choice(range(1, 4))") == choice(1, 2, 3)


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: choice(), "at least one value"),
        (lambda: choice([1], 2), "single list"),
        (lambda: choice([]), "single list"),
        (lambda: choice({"a": 1}), "text, numbers"),
        (lambda: randint(0), "upper"),
        (lambda: randint(2.5), "upper"),
        (lambda: uniform(1, 1), "min_value < max_value"),
        (lambda: uniform("a", 1), "min_value"),
        (lambda: quniform(0, 10, 0.5), "q must be a positive whole"),
        (lambda: loguniform(2, 1), "min_value <= max_value"),
        (lambda: normal(0, -1), "sigma"),
        (lambda: qnormal(0, 1, 0), "q must be"),
        (lambda: lognormal(0, float("nan")), "sigma"),
    ],
)
def test_bad_expressions_name_the_argument(make, named: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=named):
        make()


@pytest.mark.parametrize(
    "text", ["uniform", "os.system('x')", "uniform(a, 1)", "choice(range(1.5))", "foo(1)"]
)
def test_text_that_is_not_an_expression_is_refused_without_running_it(text: str) -> None:
    with pytest.raises(ConfigError, match="parameter"):
        parse_expression(text)


def test_grid_accepts_only_choice_and_bayesian_only_its_three() -> None:
    with pytest.raises(ConfigError, match=r"expects only the following distributions: \[choice\]"):
        GridParameterSampling({"--a": uniform(0, 1)})
    with pytest.raises(ConfigError, match="choice, quniform, uniform"):
        BayesianParameterSampling({"--a": loguniform(0, 1)})
    with pytest.raises(ConfigError, match="all or none"):
        GridParameterSampling({"--a": choice("x", 1)})
    with pytest.raises(ConfigError, match="whole numbers"):
        BayesianParameterSampling({"--a": quniform(0.5, 10, 1)})
    with pytest.raises(ConfigError, match="too many discrete points"):
        BayesianParameterSampling({"--a": quniform(0, 10_000_000, 1)})
    with pytest.raises(ConfigError, match="parameter_space"):
        RandomParameterSampling({})
    with pytest.raises(ConfigError, match="named twice"):
        RandomParameterSampling({"--a": uniform(0, 1), "a": uniform(0, 1)})
    with pytest.raises(ConfigError, match="'seed'"):
        RandomParameterSampling({"--a": uniform(0, 1)}, properties={"sed": 1})


def test_sampling_keeps_the_references_generator_config() -> None:
    sampling = RandomParameterSampling({"--lr": loguniform(-6, -1)}, properties={"seed": 3})
    assert sampling.to_json() == {
        "name": "RANDOM",
        "parameter_space": {"--lr": ["loguniform", [-6, -1]]},
        "properties": {"seed": 3},
    }
    grid = GridParameterSampling({"--a": choice(1, 2), "--b": choice("x", "y", "z")})
    assert grid.to_json()["name"] == "GRID" and grid.size == 6
    assert BayesianParameterSampling({"--a": uniform(0, 1)}).to_json()["name"] == (
        "BayesianOptimization"
    )


SPACE = (
    ("--u", uniform(2, 5)),
    ("--qu", quniform(0, 10, 2)),
    ("--lu", loguniform(-6, -1)),
    ("--qlu", qloguniform(0, 3, 1)),
    ("--n", normal(10, 2)),
    ("--qn", qnormal(10, 2, 5)),
    ("--ln", lognormal(0, 0.5)),
    ("--qln", qlognormal(2, 0.5, 1)),
    ("--r", randint(4)),
    ("--c", choice("a", "b", "c")),
)


def test_random_draws_follow_the_references_distributions() -> None:
    points = [draw_point(SPACE, seed=11, index=i) for i in range(4000)]
    col = {name: [p[name] for p in points] for name, _ in SPACE}
    assert all(2 <= v <= 5 for v in col["--u"]) and abs(statistics.fmean(col["--u"]) - 3.5) < 0.1
    assert set(col["--qu"]) <= {0, 2, 4, 6, 8, 10} and all(isinstance(v, int) for v in col["--qu"])
    # loguniform's bounds are in log space: values in [e^-6, e^-1], their logs uniform
    assert all(math.exp(-6) <= v <= math.exp(-1) for v in col["--lu"])
    assert abs(statistics.fmean(math.log(v) for v in col["--lu"]) - (-3.5)) < 0.1
    assert set(col["--qlu"]) <= set(range(0, 21)) and max(col["--qlu"]) >= 15
    assert (
        abs(statistics.fmean(col["--n"]) - 10) < 0.15
        and abs(statistics.stdev(col["--n"]) - 2) < 0.15
    )
    assert all(v % 5 == 0 for v in col["--qn"])
    assert abs(statistics.fmean(math.log(v) for v in col["--ln"])) < 0.05
    assert all(v > 0 for v in col["--ln"]) and all(isinstance(v, int) for v in col["--qln"])
    assert set(col["--r"]) == {0, 1, 2, 3} and set(col["--c"]) == {"a", "b", "c"}


def test_a_seed_makes_the_values_reproducible_and_draws_may_repeat() -> None:
    assert draw_point(SPACE, 5, 7) == draw_point(SPACE, 5, 7)
    assert draw_point(SPACE, 5, 7) != draw_point(SPACE, 6, 7)
    small = (("--c", choice(1, 2)),)
    values = [draw_point(small, 1, i)["--c"] for i in range(10)]
    assert len(values) > len(set(values))  # repeats, as the reference's random draws


def test_the_grid_is_the_full_cartesian_product_in_order() -> None:
    space = (("--a", choice(1, 2)), ("--b", choice("x", "y", "z")))
    assert grid_size(space) == 6
    assert [grid_point(space, i) for i in range(6)] == [
        {"--a": a, "--b": b} for a in (1, 2) for b in ("x", "y", "z")
    ]
    rest = list(grid_points(space, skip=[{"--a": 1, "--b": "y"}, {"--a": 2.0, "--b": "z"}]))
    assert len(rest) == 4 and {"--a": 1, "--b": "y"} not in rest
