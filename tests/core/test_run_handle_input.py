"""Bad input to the driver-side run handle is a clear ferry error, and leaves nothing behind.

Values are refused exactly as inside a job (the runtime's validation, the same messages); the
errors are ferry's ``ConfigError`` and also the ``TypeError``/``ValueError`` the job raises. A
refused call stores nothing: no metric, no file, no index entry.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import pytest

from ferry import Experiment, Run, Workspace
from ferry.errors import ConfigError, FerryError, LogTypeError, LogValueError
from ferry.status import RunStatus
from ferry.tracking import RunRecord

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def run(workspace: Workspace) -> Run:
    """A Completed run of experiment ``inputs`` in a real store (no job needed to refuse)."""
    experiment = Experiment(workspace, "inputs")
    now = time.time()
    workspace.store.create_run(
        RunRecord(
            id="inputs_1_abcdef12",
            experiment="inputs",
            status=RunStatus.COMPLETED,
            created_at=now,
            start_time=now,
            end_time=now,
            run_dir=str(workspace.runs_dir / "inputs_1_abcdef12"),
        )
    )
    return Run(experiment, "inputs_1_abcdef12")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.log("x", [1, 2]), LogTypeError, "Use run.log_list instead"),
        (lambda r: r.log("x", range(3)), LogTypeError, "Use run.log_list instead"),
        (lambda r: r.log(5, 1.0), LogTypeError, "a metric name must be a str"),
        (lambda r: r.log("", 1.0), LogValueError, "must not be empty"),
        (lambda r: r.log("x", object()), LogTypeError, "must be int, float, bool, str or None"),
        (lambda r: r.log("x", 1.0, step=-1), LogValueError, "non-negative int"),
        (lambda r: r.log("x", 1.0, step=1.5), LogTypeError, "non-negative int"),
        (lambda r: r.log("x", 10**5000), LogValueError, "more than 4,300 digits"),
        (lambda r: r.log_list("x", "abc"), LogTypeError, "expects a list of scalars"),
        (lambda r: r.log_list("x", [[1]]), LogTypeError, "values must be scalars"),
        (lambda r: r.log_row("x"), LogValueError, "needs at least one column"),
        (lambda r: r.log_row("x", a=[1]), LogTypeError, "cells must be scalars"),
        (lambda r: r.log_table("x", [1]), LogTypeError, "expects a dict of column"),
        (lambda r: r.log_table("x", {"a": [1], "b": [1, 2]}), LogValueError, "InvalidColumnLen"),
        (lambda r: r.log_confusion_matrix("x", "{no"), LogValueError, "the string is not JSON"),
        (lambda r: r.log_residuals("x", "[1]"), LogValueError, "expects a JSON object"),
        (lambda r: r.log_predictions("x", 5), LogTypeError, "a JSON string or a dict"),
        (lambda r: r.log_accuracy_table("x", {"f": {1, 2}}), LogTypeError, "JSON-serialisable"),
    ],
)
def test_a_value_the_runtime_refuses_is_refused_with_its_message(
    run: Run, call: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        call(run)
    assert isinstance(caught.value, ConfigError)  # a ferry error users read, not a traceback
    builtin = TypeError if error is LogTypeError else ValueError
    assert isinstance(caught.value, builtin)  # and the builtin the same call raises in a job
    assert run.get_metrics() == {}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../escape.txt", "must not contain '..'"),
        ("a/../../escape.txt", "must not contain '..'"),
        ("/etc/passwd", "must be relative"),
        ("C:\\x.txt", "must be relative"),
        ("", "must not be empty"),
        ("./", "must name a file"),
        ("a\x00b", "NUL"),
        (5, "must be a str"),
    ],
)
def test_an_unsafe_artifact_name_is_refused_and_nothing_is_written(
    run: Run, workspace: Workspace, awkward_dir: Path, name: Any, message: str
) -> None:
    source = awkward_dir / "f.txt"
    source.write_text("x")
    with pytest.raises(ConfigError, match=message):
        run.upload_file(name, source)
    with pytest.raises(ConfigError, match=message):
        run.upload_files(["fine.txt", name], [source, source])
    assert run.get_file_names() == []  # the good name of the batch was not kept either
    assert not (workspace.runs_dir / run.id / "artifacts").exists()
    assert not (workspace.runs_dir / run.id / "escape.txt").exists()


def test_a_link_in_the_artifacts_is_never_written_through(
    run: Run, workspace: Workspace, awkward_dir: Path
) -> None:
    outside = awkward_dir / "outside"
    outside.mkdir()
    artifacts = workspace.runs_dir / run.id / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "linked").symlink_to(outside, target_is_directory=True)
    (artifacts / "file link").symlink_to(outside / "target.txt")
    with pytest.raises(ConfigError, match="through a symbolic link"):
        run.upload_file("linked/x.txt", io.BytesIO(b"x"))
    with pytest.raises(ConfigError, match="through a symbolic link"):
        run.upload_file("file link", io.BytesIO(b"x"))
    assert list(outside.iterdir()) == []
    assert run.get_file_names() == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing.txt", "cannot read .*No such file"),
        (".", "is a folder; use upload_folder"),
        (42, "expected a file path or a readable stream, got int"),
    ],
)
def test_an_unreadable_source_is_refused(
    run: Run, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch, source: Any, message: str
) -> None:
    monkeypatch.chdir(awkward_dir)
    with pytest.raises(ConfigError, match=message):
        run.upload_file("x.txt", source)
    assert run.get_file_names() == []


def test_files_copied_before_a_failure_are_kept_and_listed(run: Run, awkward_dir: Path) -> None:
    good = awkward_dir / "good.txt"
    good.write_text("g")
    with pytest.raises(ConfigError, match="cannot read"):
        run.upload_files(["a.txt", "b.txt"], [good, awkward_dir / "missing.txt"])
    assert run.get_file_names() == ["a.txt"]


def test_upload_files_and_folder_refuse_what_the_reference_refuses(
    run: Run, awkward_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="one name per path: got 1 names and 0 paths"):
        run.upload_files(["a"], [])
    (awkward_dir / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match="expects a folder"):
        run.upload_folder("x", awkward_dir / "file.txt")
    with pytest.raises(ConfigError, match="expects a folder path, got int"):
        run.upload_folder("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="an artifact name must be a str"):
        run.upload_folder(5, awkward_dir)  # type: ignore[arg-type]
    assert run.get_file_names() == []


def test_log_image_needs_one_real_image(run: Run, awkward_dir: Path) -> None:
    text = awkward_dir / "not an image.png"
    text.write_text("hello")
    image = awkward_dir / "i.png"
    image.write_bytes(PNG)
    with pytest.raises(ConfigError, match="exactly one of path= or plot="):
        run.log_image("img")
    with pytest.raises(ConfigError, match="exactly one of path= or plot="):
        run.log_image("img", path=image, plot=object())
    with pytest.raises(ConfigError, match="is not an image"):
        run.log_image("img", path=text)
    with pytest.raises(ConfigError, match="cannot read"):
        run.log_image("img", path=awkward_dir / "missing.png")
    with pytest.raises(LogTypeError, match=r"matplotlib figure or matplotlib\.pyplot"):
        run.log_image("img", plot=object())
    assert run.get_metrics() == {} and run.get_file_names() == []
    run.log_image("img", path=image)
    assert run.get_metrics() == {"img": "i.png"} and run.get_file_names() == ["i.png"]


class _Figure:
    """Stands in for a matplotlib figure: what log_image calls is ``savefig(path, format=)``."""

    def savefig(self, path: str, format: str) -> None:
        Path(path).write_bytes(PNG)


def test_a_plot_is_kept_as_png_under_the_metric_name(run: Run) -> None:
    run.log_image("loss/curve", plot=_Figure())
    (name,) = run.get_file_names()
    assert name.startswith("loss_curve_") and name.endswith(".png")
    assert run.get_metrics() == {"loss/curve": name}


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("display_name", "", "must be a non-empty str"),
        ("display_name", 5, "must be a non-empty str"),
        ("display_name", "x" * 256, "at most 255 characters"),
        ("description", 5, "must be a str or None"),
    ],
)
def test_names_refuse_what_the_history_cannot_keep(
    run: Run, attribute: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        setattr(run, attribute, value)
    assert run.display_name == run.id and run.description is None


def test_snapshots_environment_and_logs_refuse_bad_input(
    run: Run, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no file or folder at"):
        run.take_snapshot(awkward_dir / "missing")
    with pytest.raises(ConfigError, match="expects a file or folder path"):
        run.take_snapshot(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="has no environment"):
        run.get_environment()
    (awkward_dir / "a file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        run.get_all_logs(awkward_dir / "a file")
    monkeypatch.chdir(awkward_dir)
    assert run.get_all_logs() == []  # a run without logs: nothing written, no error
    assert (awkward_dir / "assets" / run.id).is_dir()


def test_tags_and_properties_refuse_what_they_cannot_store(run: Run) -> None:
    with pytest.raises(ConfigError, match="tag names must be non-empty strings"):
        run.set_tags({5: "x"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="set_tags expects a dict"):
        run.set_tags(["a"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="property names must be non-empty strings"):
        run.add_properties({"": "x"})
    run.tag("flag")
    assert run.get_tags() == {"flag": None}


def test_the_run_handle_has_no_attribute_fallback(run: Run) -> None:
    """The interactive run is a subclass; a plain handle answers only what it defines."""
    assert "__getattr__" not in vars(Run)
    with pytest.raises(AttributeError):
        run.child_run  # type: ignore[attr-defined]  # noqa: B018 - the access is the test
    assert isinstance(LogTypeError("x"), FerryError)


def test_a_text_stream_is_kept_as_utf8_in_a_private_file(run: Run, workspace: Workspace) -> None:
    run.upload_file("deep/t.txt", io.StringIO("ü" * 3))
    kept = workspace.runs_dir / run.id / "artifacts" / "deep" / "t.txt"
    assert kept.read_bytes() == "üüü".encode()
    assert kept.stat().st_mode & 0o777 == 0o600  # private, like the rest of the workspace
    assert kept.parent.stat().st_mode & 0o777 == 0o700
