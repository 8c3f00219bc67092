"""What the run API refuses, and how it converts what it accepts (no spool involved)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ferry.runtime import OfflineRun
from ferry.runtime.artifacts import sniff_bytes
from ferry.runtime.validation import (
    LIST_IN_LOG,
    artifact_parts,
    check_metric_name,
    check_run_id,
    to_json_object,
    to_list,
    to_row,
    to_scalar,
    to_step,
    to_table,
)


def _gen() -> Any:
    yield 1


@pytest.fixture
def run(no_job_env: None, capsys: pytest.CaptureFixture[str]) -> OfflineRun:
    return OfflineRun()


@pytest.mark.parametrize(
    "value", [[1, 2], (1, 2), range(3), _gen(), {"a": 1}, {1, 2}, np.array([1])]
)
def test_log_refuses_collections_pointing_to_log_list(run: OfflineRun, value: Any) -> None:
    with pytest.raises(TypeError) as info:
        run.log("m", value)
    assert str(info.value) == "run.log does not support list type. Use run.log_list instead"
    assert str(info.value) == LIST_IN_LOG


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float64(1.5), 1.5),
        (np.int64(7), 7),
        (np.bool_(True), True),
        (Fraction(1, 4), 0.25),
        (True, True),
        (None, None),
        ("text", "text"),
        (math.inf, math.inf),
    ],
)
def test_scalars_are_converted_to_plain_json_scalars(value: Any, expected: Any) -> None:
    converted = to_scalar(value)
    assert converted == expected
    assert type(converted) is type(expected)


def test_nan_is_a_scalar() -> None:
    assert math.isnan(to_scalar(math.nan))


@pytest.mark.parametrize("value", [b"bytes", object(), 1j])
def test_log_refuses_non_scalars_naming_the_type(value: Any) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        to_scalar(value)


@pytest.mark.parametrize("step", [-1, -100])
def test_negative_step_is_a_value_error(step: int) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        to_step(step)


@pytest.mark.parametrize("step", [1.0, "1", True, [1]])
def test_non_int_step_is_a_type_error(step: Any) -> None:
    with pytest.raises(TypeError, match="non-negative int"):
        to_step(step)


def test_step_accepts_ints_and_int_scalars() -> None:
    assert to_step(0) == 0
    assert to_step(np.int64(12)) == 12
    assert type(to_step(np.uint8(12))) is int
    assert to_step(None) is None


@pytest.mark.parametrize("name", ["loss ", " loss", "a/b", "a..b", "ü 'q' \"dq\"", "x\ny", "."])
def test_metric_names_are_kept_exactly(run: OfflineRun, name: str) -> None:
    assert check_metric_name(name) == name
    run.log(name, 1)
    assert run.get_metrics() == {name: 1}


def test_metric_name_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        check_metric_name("")
    with pytest.raises(TypeError, match="must be a str"):
        check_metric_name(3)


def test_log_list_accepts_iterables_and_arrays() -> None:
    assert to_list((1, 2)) == [1, 2]
    assert to_list(range(3)) == [0, 1, 2]
    assert to_list(x for x in "ab") == ["a", "b"]
    assert to_list(np.array([1.5, 2.5])) == [1.5, 2.5]


@pytest.mark.parametrize("value", ["abc", {"a": 1}, 3, [[1, 2]]])
def test_log_list_refuses_non_lists_and_nested_lists(value: Any) -> None:
    with pytest.raises(TypeError):
        to_list(value)


def test_log_row_cells_must_be_scalars() -> None:
    with pytest.raises(TypeError, match="column 'b' got list"):
        to_row({"a": 1, "b": [1, 2]})
    with pytest.raises(ValueError, match="at least one column"):
        to_row({})
    assert to_row({"a": np.int32(2)}) == {"a": 2}


def test_log_table_columns_must_have_equal_lengths() -> None:
    with pytest.raises(ValueError) as info:
        to_table({"x": [1, 2, 3], "y": [1, 2]})
    message = str(info.value)
    assert "InvalidColumnLength" in message
    assert "'x' has 3" in message
    assert "'y' has 2" in message


def test_log_table_shapes() -> None:
    assert to_table({"x": (1, 2), "y": np.array([3, 4])}) == {"x": [1, 2], "y": [3, 4]}
    with pytest.raises(TypeError):
        to_table([1, 2])
    with pytest.raises(TypeError):
        to_table({"x": 1})


def test_json_typed_values() -> None:
    cm = {"schema_type": "confusion_matrix", "data": {"matrix": [[1, 0], [0, 1]]}}
    assert to_json_object(cm, "confusion_matrix") == cm
    assert to_json_object('{"a": [1, 2]}', "residuals") == {"a": [1, 2]}
    assert to_json_object({"t": (1, 2)}, "predictions") == {"t": [1, 2]}
    with pytest.raises(ValueError, match="not JSON"):
        to_json_object("{nope", "residuals")
    with pytest.raises(ValueError, match="JSON object"):
        to_json_object("[1, 2]", "residuals")
    with pytest.raises(TypeError):
        to_json_object({"a": object()}, "predictions")
    with pytest.raises(TypeError):
        to_json_object(3, "predictions")


@pytest.mark.parametrize(
    "name", ["/abs", "\\abs", "C:\\x", "c:x", "../up", "a/../../b", "a\\..\\b", "", "a\x00b", "./"]
)
def test_artifact_names_that_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        artifact_parts(name)


def test_artifact_names_split_on_both_separators() -> None:
    assert artifact_parts("a b/ü 'q'\\c.txt") == ["a b", "ü 'q'", "c.txt"]
    assert artifact_parts("./a//b") == ["a", "b"]
    assert artifact_parts("..hidden/x..y") == ["..hidden", "x..y"]


@pytest.mark.parametrize("run_id", ["", ".", "..", "a/b", "a\\b"])
def test_bad_run_ids_are_refused(run_id: str) -> None:
    with pytest.raises(ValueError):
        check_run_id(run_id)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, "jpeg"),
        (b"GIF89a" + b"\0" * 20, "gif"),
        (b"GIF87a" + b"\0" * 20, "gif"),
        (b"BM" + b"\0" * 30, "bmp"),
        (b"II*\x00" + b"\0" * 20, "tiff"),
        (b"MM\x00*" + b"\0" * 20, "tiff"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "svg"),
        (b'\xef\xbb\xbf  <?xml version="1.0"?>\n<svg></svg>', "svg"),
        (b"hello world", None),
        (b'<?xml version="1.0"?><html/>', None),
        (b"", None),
    ],
)
def test_images_are_recognised_by_magic_bytes(head: bytes, kind: str | None) -> None:
    assert sniff_bytes(head) == kind


def test_log_image_needs_exactly_one_of_path_and_plot(run: OfflineRun, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        run.log_image("img")
    image = tmp_path / "i.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match="exactly one"):
        run.log_image("img", path=image, plot=object())


def test_log_image_refuses_files_that_are_not_images(run: OfflineRun, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="is not an image"):
        run.log_image("img", path=text)


def test_log_image_refuses_plots_without_savefig(run: OfflineRun) -> None:
    with pytest.raises(TypeError, match="matplotlib"):
        run.log_image("img", plot=object())


def test_validation_happens_before_anything_is_recorded(run: OfflineRun) -> None:
    for bad in (lambda: run.log("m", [1]), lambda: run.log("m", 1, step=-1)):
        with pytest.raises((TypeError, ValueError)):
            bad()
    assert run.get_metrics() == {}
