"""Real numpy values and a real matplotlib figure through ``run.log*`` into the spool.

The runtime imports neither library: numpy scalars and 0-d arrays are converted with ``item()``,
arrays with ``tolist()``, figures are saved through their own ``savefig``. These tests use the
real packages (the ``dev`` extra), so a change in either that the duck typing misses shows here.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

try:
    import matplotlib
    import numpy as np
except ImportError as exc:  # pragma: no cover - a dev environment without the dev extra
    raise ImportError(
        f"{exc.name} is needed by these tests: uv pip install -e '.[dev]' (numpy, matplotlib)"
    ) from exc

matplotlib.use("Agg")
import matplotlib.image
import matplotlib.pyplot as plt

from ferry.runtime import SubmittedRun, get_context

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(job_env: Path) -> SubmittedRun:
    found = get_context()
    assert isinstance(found, SubmittedRun)
    return found


def _records(run: SubmittedRun, read_records: Any, spool: Path) -> list[dict[str, Any]]:
    run.flush()
    return list(read_records(spool))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float32(0.25), 0.25),
        (np.float32(0.1), float(np.float32(0.1))),  # the float32's own value, widened exactly
        (np.float64(0.1), 0.1),
        (np.int64(-(2**62)), -(2**62)),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.int8(7), 7),
        (np.bool_(True), True),
        (np.bool_(False), False),
        (np.str_("héllo"), "héllo"),
        (np.array(3.5), 3.5),  # a 0-d array
        (np.array(4, dtype=np.int16), 4),
        (np.array("text"), "text"),
    ],
    ids=lambda v: f"{type(v).__name__}:{v!s}" if not isinstance(v, (int, float, str)) else None,
)
def test_numpy_scalars_are_spooled_as_plain_json_scalars(
    run: SubmittedRun, job_env: Path, read_records: Any, value: Any, expected: Any
) -> None:
    run.log("m", value, step=np.int64(3))
    (record,) = _records(run, read_records, job_env)
    assert record["value"] == expected
    assert type(record["value"]) is type(expected)
    assert record["step"] == 3
    assert run.get_metrics() == {"m": expected}


def test_numpy_nan_and_infinities_round_trip(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    run.log("nan", np.nan)
    run.log("nan32", np.float32("nan"))
    run.log("inf", np.float64("inf"))
    run.log("ninf", -np.inf)
    values = {r["name"]: r["value"] for r in _records(run, read_records, job_env)}
    assert math.isnan(values["nan"]) and math.isnan(values["nan32"])
    assert values["inf"] == math.inf and values["ninf"] == -math.inf


def test_arrays_are_lists_tables_and_rows(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    run.log_list("losses", np.linspace(0.0, 1.0, 5, dtype=np.float32))
    run.log_list("ints", np.arange(3, dtype=np.int64))
    run.log_table("t", {"x": np.array([1, 2]), "y": np.array([0.5, 1.5])})
    run.log_row("r", epoch=np.int64(1), loss=np.float32(0.5), ok=np.bool_(True))
    records = {r["name"]: r for r in _records(run, read_records, job_env)}
    assert records["losses"]["value"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(type(v) is float for v in records["losses"]["value"])
    assert records["ints"]["value"] == [0, 1, 2]
    assert all(type(v) is int for v in records["ints"]["value"])
    assert records["t"]["value"] == {"x": [1, 2], "y": [0.5, 1.5]}
    assert records["r"]["value"] == {"epoch": 1, "loss": 0.5, "ok": True}


def test_arrays_in_log_and_two_d_arrays_in_log_list_are_refused(run: SubmittedRun) -> None:
    with pytest.raises(TypeError, match=r"Use run\.log_list instead"):
        run.log("m", np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="scalars"):
        run.log_list("m", np.ones((2, 2)))
    with pytest.raises(TypeError, match="non-negative int"):
        run.log("m", 1, step=np.float64(1.0))  # type: ignore[arg-type]


def test_a_matplotlib_figure_is_stored_as_a_png(
    run: SubmittedRun,
    job_env: Path,
    read_records: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # to see the temporary PNG go
    figure = plt.figure(figsize=(4, 3), dpi=50)
    figure.gca().plot(np.arange(10), np.arange(10) ** 2)
    before = int(time.time())
    try:
        run.log_image("roc/curve 'ü'", plot=figure, description="a curve")
    finally:
        plt.close(figure)
    file_record, metric = _records(run, read_records, job_env)
    stamp = int(file_record["name"].rsplit("_", 1)[1].removesuffix(".png"))
    assert before <= stamp <= time.time()
    assert file_record["name"] == f"roc_curve 'ü'_{stamp}.png"
    stored = job_env / file_record["path"]
    assert stored.read_bytes().startswith(PNG_MAGIC)
    assert matplotlib.image.imread(stored).shape[:2] == (150, 200)  # 3x4 inches at 50 dpi
    assert (metric["name"], metric["type"], metric["value"], metric["desc"]) == (
        "roc/curve 'ü'",
        "image",
        file_record["name"],
        "a curve",
    )
    assert list(tmp_path.glob("ferry-plot-*")) == []


def test_pyplot_itself_logs_its_current_figure(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    figure = plt.figure(figsize=(2, 2), dpi=40)
    plt.plot([0, 1], [1, 0])
    try:
        run.log_image("current", plot=plt)
    finally:
        plt.close(figure)
    file_record, _ = _records(run, read_records, job_env)
    assert matplotlib.image.imread(job_env / file_record["path"]).shape[:2] == (80, 80)
