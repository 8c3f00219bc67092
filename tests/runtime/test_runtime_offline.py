"""The offline run: the reference's printed wording, and the whole API working in memory."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from ferry.runtime import JobRun, OfflineRun


@pytest.fixture
def run(no_job_env: None) -> OfflineRun:
    return OfflineRun()


def _printed(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_offline_ids(run: OfflineRun) -> None:
    assert re.fullmatch(
        r"OfflineRun_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", run.id
    )
    assert run.child_run("fold").id == f"{run.id}.fold"
    assert run.child_run("fold").id == f"{run.id}.fold_2"  # ids stay unique
    assert run.child_run().id.startswith(f"{run.id}.")
    assert isinstance(run, JobRun)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda r: r.log("loss", 0.5), "Attempted to log scalar metric loss:\n0.5\n"),
        (lambda r: r.log("loss", 0.5, step=2), "Attempted to log scalar metric loss:\n0.5\n"),
        (lambda r: r.log_list("l", [1, 2]), "Attempted to log list metric l:\n[1, 2]\n"),
        (lambda r: r.log_row("r", x=1), "Attempted to log row metric r:\n{'x': 1}\n"),
        (
            lambda r: r.log_table("t", {"a": [1]}),
            "Attempted to log table metric t:\n{'a': [1]}\n",
        ),
        (
            lambda r: r.log_residuals("res", {"d": 1}),
            "Attempted to log residuals metric res:\n{'d': 1}\n",
        ),
        (
            lambda r: r.log_predictions("p", {"d": 1}),
            "Attempted to log predictions metric p:\n{'d': 1}\n",
        ),
        (
            lambda r: r.log_accuracy_table("a", {"d": 1}),
            "Attempted to log accuracy_table metric a:\n{'d': 1}\n",
        ),
        (
            lambda r: r.log_confusion_matrix("c", '{"d": 1}'),
            "Attempted to log confusion_matrix metric c:\n{'d': 1}\n",
        ),
        (lambda r: r.set_tags({"a": "b"}), "Attempted to set tags {'a': 'b'}\n"),
        (lambda r: r.tag("k", "v"), "Attempted to add tag k with value v\n"),
        (lambda r: r.add_properties({"p": "v"}), "Attempted to add properties {'p': 'v'}\n"),
        (lambda r: r.remove_tags(["k"]), "Attempted to remove tags ['k']\n"),
    ],
)
def test_offline_wording(
    run: OfflineRun, capsys: pytest.CaptureFixture[str], call: object, expected: str
) -> None:
    call(run)  # type: ignore[operator]
    assert _printed(capsys) == expected


def test_offline_file_wording(
    run: OfflineRun, capsys: pytest.CaptureFixture[str], awkward_dir: Path
) -> None:
    path = awkward_dir / "m 'ü'.pkl"
    path.write_bytes(b"x")
    run.upload_file("model.pkl", str(path))
    assert _printed(capsys) == f"Attempted to track file model.pkl at {path}\n"
    run.upload_folder("outputs", awkward_dir)
    assert _printed(capsys) == f"Attempted to track folder outputs at {awkward_dir}\n"
    run.upload_files(["a", "b"], [str(path), str(path)])
    assert _printed(capsys) == f"Attempted to track files ['a', 'b'] at {[str(path)] * 2}\n"
    assert run.get_file_names() == ["model.pkl", "outputs/m 'ü'.pkl", "a", "b"]


def test_offline_image_wording(
    run: OfflineRun, capsys: pytest.CaptureFixture[str], awkward_dir: Path
) -> None:
    path = awkward_dir / "p.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    run.log_image("img", path=str(path))
    assert _printed(capsys) == f"Attempted to log image metric img:\n{path}\n"
    assert run.get_metrics() == {"img": "p.png"}


def test_offline_context_manager_wording(
    run: OfflineRun, capsys: pytest.CaptureFixture[str]
) -> None:
    with run:
        pass
    assert _printed(capsys) == f"[START] Run {run.id} context\n[STOP] Run {run.id} context\n"


def test_offline_uploads_copy_nothing_but_validate(run: OfflineRun, tmp_path: Path) -> None:
    run.upload_file("a.txt", io.BytesIO(b"x"))
    with pytest.raises(ValueError):
        run.upload_file("../a.txt", io.BytesIO(b"x"))
    assert list(tmp_path.iterdir()) == []


def test_offline_supports_the_whole_api(
    run: OfflineRun, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run.experiment.name == "offline"
    assert run.parent is None
    run.log("loss", 0.3, step=1)
    run.log("loss", 0.2, step=2)
    children = run.create_children(count=2)
    assert [c.get_tags() for c in children] == [
        {"azureml.batch_child_number": "0"},
        {"azureml.batch_child_number": "1"},
    ]
    with run.child_run("fold") as child:
        child.log("acc", 0.9)
    assert child.parent is run
    assert child.get_status() == "Completed"
    assert run.get_metrics() == {"loss": [0.3, 0.2]}
    assert run.get_metrics(recursive=True) == {
        run.id: {"loss": [0.3, 0.2]},
        children[0].id: {},
        children[1].id: {},
        child.id: {"acc": 0.9},
    }
    assert run.get_children() == [*children, child]
    assert run.get_status() == "Running"
    run.flush()
    run.complete()
    assert run.get_status() == "Completed"


def test_offline_child_failure_is_kept_in_memory(run: OfflineRun) -> None:
    with pytest.raises(KeyError), run.child_run("bad") as child:
        raise KeyError("missing")
    assert child.get_status() == "Failed"
    statuses = [r for r in run._records() if r["k"] == "status"]
    assert statuses[0]["error"] == "KeyError: 'missing'"
