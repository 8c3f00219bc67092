"""The run inside a submitted job: the records it spools, the shapes get_metrics returns,
children, tags, properties, artifacts and statuses."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from ferry.runtime import (
    JobRun,
    OfflineRun,
    RunEnvironmentException,
    SubmittedRun,
    get_context,
)
from ferry.runtime.context import context_from

RUN_ID = "exp_1718000000_ab12cd34"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
CHILD_ID = re.compile(r"^exp_\d{10}_[0-9a-f]{8}$")


@pytest.fixture
def run(job_env: Path) -> SubmittedRun:
    found = get_context()
    assert isinstance(found, SubmittedRun)
    return found


def _records(run: JobRun, read_records: Any, spool: Path) -> list[dict[str, Any]]:
    run.flush()
    return read_records(spool)


def _without_ts(record: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(record.pop("ts"), float)
    return record


# -- context ---------------------------------------------------------------------------------


def test_get_context_returns_the_jobs_run_once(run: SubmittedRun, job_env: Path) -> None:
    assert run.id == RUN_ID
    assert run.experiment.name == "exp"
    assert run.parent is None
    assert run.get_status() == "Running"
    assert run.name == RUN_ID == run.display_name
    assert get_context() is run
    assert JobRun.get_context() is run
    assert SubmittedRun.get_context() is run
    assert isinstance(run, JobRun)


def test_offline_without_the_job_variables(no_job_env: None) -> None:
    offline = get_context()
    assert isinstance(offline, OfflineRun)
    assert re.fullmatch(r"OfflineRun_[0-9a-f-]{36}", offline.id)
    assert get_context() is offline
    with pytest.raises(RunEnvironmentException, match="FERRY_RUN_ID and FERRY_SPOOL_DIR"):
        get_context(allow_offline=False)
    assert issubclass(RunEnvironmentException, RuntimeError)


def test_experiment_comes_from_the_run_id_when_not_set(spool_dir: Path) -> None:
    found = context_from(
        {"FERRY_RUN_ID": "diabetes_17_0123abcd", "FERRY_SPOOL_DIR": str(spool_dir)}
    )
    assert found.experiment.name == "diabetes"
    found.flush()


def test_sweep_child_job_sees_its_parent(spool_dir: Path, read_records: Any) -> None:
    env = {
        "FERRY_RUN_ID": "hd_17_0123abcd",
        "FERRY_SPOOL_DIR": str(spool_dir),
        "FERRY_EXPERIMENT": "hd",
        "FERRY_PARENT_RUN_ID": "HD_parent",
    }
    found = context_from(env)
    assert found.parent is not None and found.parent.id == "HD_parent"
    with pytest.warns(UserWarning, match="does not change the status"):
        found.parent.complete()
    found.flush()
    assert read_records(spool_dir) == []


# -- records, exactly per the protocol --------------------------------------------------------


def test_each_call_writes_the_protocol_record(
    run: SubmittedRun, job_env: Path, read_records: Any, awkward_dir: Path
) -> None:
    src = awkward_dir / "weights 'a'.bin"
    src.write_bytes(b"w")
    run.log("loss", 0.5, description="train loss", step=3)
    run.log_list("l", [1, 2])
    run.log_row("r", x=1, y="a")
    run.log_table("t", {"a": [1, 2], "b": [3, 4]})
    run.log_residuals("res", '{"schema_type": "residuals", "data": {}}')
    run.tag("k", "v")
    run.tag("bare")
    run.remove_tags(["bare"])
    run.add_properties({"p": 1})
    run.upload_file("out/w.bin", str(src))
    records = [_without_ts(r) for r in _records(run, read_records, job_env)]
    base = {"run": RUN_ID}
    assert records == [
        {**base, "k": "metric", "name": "loss", "type": "scalar", "value": 0.5, "step": 3,
         "desc": "train loss"},
        {**base, "k": "metric", "name": "l", "type": "list", "value": [1, 2], "step": None,
         "desc": ""},
        {**base, "k": "metric", "name": "r", "type": "row", "value": {"x": 1, "y": "a"},
         "step": None, "desc": ""},
        {**base, "k": "metric", "name": "t", "type": "table",
         "value": {"a": [1, 2], "b": [3, 4]}, "step": None, "desc": ""},
        {**base, "k": "metric", "name": "res", "type": "residuals",
         "value": {"schema_type": "residuals", "data": {}}, "step": None, "desc": ""},
        {**base, "k": "tags", "set": {"k": "v"}},
        {**base, "k": "tags", "set": {"bare": None}},
        {**base, "k": "untag", "keys": ["bare"]},
        {**base, "k": "props", "set": {"p": "1"}},
        {**base, "k": "file", "name": "out/w.bin", "path": f"files/{RUN_ID}/out/w.bin"},
    ]  # fmt: skip
    assert (job_env / f"files/{RUN_ID}/out/w.bin").read_bytes() == b"w"


def test_child_run_records_and_statuses(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    with run.child_run("fold 1") as child:
        child.log("acc", 0.9)
    with pytest.raises(ValueError, match="boom"), run.child_run() as failing:
        raise ValueError("boom")
    records = [_without_ts(r) for r in _records(run, read_records, job_env)]
    assert CHILD_ID.match(child.id) and CHILD_ID.match(failing.id)
    assert child.id != failing.id
    assert records == [
        {"k": "child", "run": child.id, "parent": RUN_ID, "name": "fold 1", "tags": {}},
        {"k": "metric", "run": child.id, "name": "acc", "type": "scalar", "value": 0.9,
         "step": None, "desc": ""},
        {"k": "status", "run": child.id, "status": "Completed", "error": None},
        {"k": "child", "run": failing.id, "parent": RUN_ID, "name": None, "tags": {}},
        {"k": "status", "run": failing.id, "status": "Failed", "error": "ValueError: boom"},
    ]  # fmt: skip
    assert child.get_status() == "Completed" and failing.get_status() == "Failed"
    assert child.parent is run and child.name == "fold 1"
    assert child.experiment == run.experiment


def test_child_run_with_a_given_id(run: SubmittedRun) -> None:
    child = run.child_run(run_id="my_child")
    assert child.id == "my_child"
    with pytest.raises(ValueError):
        run.child_run(run_id="../escape")


def test_child_fail_cancel_and_complete_once(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    a, b = run.child_run("a"), run.child_run("b")
    a.fail(error_details="bad input", error_code="UserError")
    b.cancel()
    with pytest.warns(UserWarning, match="already ended"):
        b.complete()
    statuses = [
        (r["run"], r["status"], r["error"])
        for r in _records(run, read_records, job_env)
        if r["k"] == "status"
    ]
    assert statuses == [(a.id, "Failed", "UserError: bad input"), (b.id, "Canceled", None)]


def test_the_jobs_own_run_only_warns_on_complete_fail_cancel(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    for end in (run.complete, run.fail, run.cancel):
        with pytest.warns(UserWarning, match="does not change the status"):
            end()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with run:
            run.log("m", 1)
    assert run.get_status() == "Running"
    assert [r["k"] for r in read_records(job_env)] == ["metric"]  # __exit__ flushed


def test_create_children_by_count(run: SubmittedRun, job_env: Path, read_records: Any) -> None:
    children = run.create_children(count=3)
    assert [c.get_tags() for c in children] == [
        {"azureml.batch_child_number": str(i)} for i in range(3)
    ]
    child_records = [r for r in _records(run, read_records, job_env) if r["k"] == "child"]
    assert [r["tags"] for r in child_records] == [
        {"azureml.batch_child_number": str(i)} for i in range(3)
    ]
    assert [r["run"] for r in child_records] == [c.id for c in children]
    assert all(r["parent"] == RUN_ID and r["name"] is None for r in child_records)


def test_create_children_by_tag_values(run: SubmittedRun) -> None:
    children = run.create_children(tag_key="lr", tag_values=["0.1", "0.01"])
    assert [c.get_tags() for c in children] == [{"lr": "0.1"}, {"lr": "0.01"}]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"count": 2, "tag_key": "k", "tag_values": ["a"]}, ValueError),
        ({"tag_key": "k"}, ValueError),
        ({"count": 101}, ValueError),
        ({"count": -1}, ValueError),
        ({"count": 2.5}, TypeError),
        ({"tag_key": "k", "tag_values": [str(i) for i in range(101)]}, ValueError),
        ({"tag_key": "k", "tag_values": "abc"}, TypeError),
    ],
)
def test_create_children_validation(
    run: SubmittedRun, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        run.create_children(**kwargs)
    assert run.get_children() == []


def test_create_children_allows_exactly_100(run: SubmittedRun) -> None:
    assert len(run.create_children(count=100)) == 100


def test_get_children_includes_other_processes_children(
    run: SubmittedRun, job_env: Path, run_python: Any, runtime_path: Path, job_vars: Any
) -> None:
    mine = run.child_run("mine")
    run_python(
        """
        from ferry_runtime import get_context
        run = get_context()
        kid = run.child_run("theirs")
        kid.tag("from", "other")
        grandkid = kid.child_run("deep")
        grandkid.complete()
        """,
        pythonpath=[runtime_path],
        env=job_vars(job_env),
    )
    children = run.get_children()
    assert [c.name for c in children] == ["mine", "theirs"]
    assert children[0] is mine
    assert children[1].get_tags() == {"from": "other"}
    everything = run.get_children(recursive=True)
    assert [c.name for c in everything] == ["mine", "theirs", "deep"]
    assert everything[2].get_status() == "Completed"
    assert everything[2].parent is children[1]
    assert [c.name for c in run.get_children(tags={"from": "other"})] == ["theirs"]
    assert [c.name for c in run.get_children(recursive=True, status="Completed")] == ["deep"]


# -- get_metrics shapes -----------------------------------------------------------------------


def test_get_metrics_shapes(run: SubmittedRun, awkward_dir: Path) -> None:
    image = awkward_dir / "cm 'x'.png"
    image.write_bytes(PNG)
    run.log("once", 1)
    for v in (0.3, 0.2, 0.1):
        run.log("loss", v)
    run.log_list("list once", [1, 2])
    run.log_list("list twice", [1])
    run.log_list("list twice", [2, 3])
    run.log_row("rows", epoch=1, acc=0.5)
    run.log_row("rows", epoch=2, acc=0.7)
    run.log_row("one row", a=1, b=2)
    run.log_table("table", {"x": [1, 2], "y": [3, 4]})
    run.log_table("one-row table", {"x": [1], "y": [2]})
    run.log_image("img", path=image)
    run.log_confusion_matrix("cm", {"schema_type": "confusion_matrix", "data": [1]})
    assert run.get_metrics() == {
        "once": 1,
        "loss": [0.3, 0.2, 0.1],
        "list once": [1, 2],
        "list twice": [[1], [2, 3]],
        "rows": {"epoch": [1, 2], "acc": [0.5, 0.7]},
        "one row": {"a": 1, "b": 2},
        "table": {"x": [1, 2], "y": [3, 4]},
        "one-row table": {"x": 1, "y": 2},
        "img": "cm 'x'.png",
        "cm": {"schema_type": "confusion_matrix", "data": [1]},
    }
    assert run.get_metrics(name="loss") == {"loss": [0.3, 0.2, 0.1]}
    assert run.get_metrics(name="absent") == {}


def test_rows_with_different_columns_are_filled_with_none(run: SubmittedRun) -> None:
    run.log_row("r", a=1)
    run.log_row("r", a=2, b=3)
    assert run.get_metrics() == {"r": {"a": [1, 2], "b": [None, 3]}}


def test_get_metrics_recursive(run: SubmittedRun) -> None:
    run.log("top", 1)
    child = run.child_run("c")
    child.log("m", 2)
    grandchild = child.child_run("g")
    grandchild.log("m", 3)
    silent = run.child_run("s")
    assert run.get_metrics(recursive=True) == {
        RUN_ID: {"top": 1},
        child.id: {"m": 2},
        grandchild.id: {"m": 3},
        silent.id: {},
    }
    assert child.get_metrics() == {"m": 2}
    assert child.get_metrics(recursive=True) == {child.id: {"m": 2}, grandchild.id: {"m": 3}}


def test_get_metrics_sees_metrics_of_other_processes(
    run: SubmittedRun, job_env: Path, run_python: Any, runtime_path: Path, job_vars: Any
) -> None:
    run.log("m", 1)
    run_python(
        "from ferry_runtime import get_context; get_context().log('m', 2)",
        pythonpath=[runtime_path],
        env=job_vars(job_env),
    )
    run.log("m", 3)
    assert sorted(run.get_metrics()["m"]) == [1, 2, 3]


# -- tags and properties ----------------------------------------------------------------------


def test_tags(run: SubmittedRun) -> None:
    run.tag("a", "1")
    run.set_tags({"b": 2, "c": None})
    run.set_tags("d")
    run.remove_tags(["a"])
    assert run.get_tags() == {"b": "2", "c": None, "d": None} == run.tags
    with pytest.raises(TypeError):
        run.set_tags(["x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        run.tag("")


def test_properties_are_immutable(run: SubmittedRun, job_env: Path, read_records: Any) -> None:
    run.add_properties({"a": "1"})
    run.add_properties({"a": "1", "b": "2"})  # same value again: fine
    with pytest.raises(ValueError, match="immutable"):
        run.add_properties({"c": "3", "a": "other"})
    run.add_properties({})
    assert run.get_properties() == {"a": "1", "b": "2"} == run.properties
    props = [r["set"] for r in _records(run, read_records, job_env) if r["k"] == "props"]
    assert props == [{"a": "1"}, {"b": "2"}]  # the refused call wrote nothing, not even "c"


# -- artifacts --------------------------------------------------------------------------------


def test_upload_folder_names_use_forward_slashes(
    run: SubmittedRun, job_env: Path, read_records: Any, awkward_dir: Path
) -> None:
    folder = awkward_dir / "out dir"
    (folder / "sub ü").mkdir(parents=True)
    (folder / "a 'q'.txt").write_text("a")
    (folder / "sub ü" / 'b "dq".txt').write_text("b")
    run.upload_folder("results", folder)
    files = [r for r in _records(run, read_records, job_env) if r["k"] == "file"]
    assert [r["name"] for r in files] == ["results/a 'q'.txt", 'results/sub ü/b "dq".txt']
    for r in files:
        assert r["path"] == f"files/{RUN_ID}/{r['name']}"
        assert (job_env / r["path"]).is_file()
    assert run.get_file_names() == ["results/a 'q'.txt", 'results/sub ü/b "dq".txt']


def test_upload_folder_refuses_a_file(run: SubmittedRun, awkward_dir: Path) -> None:
    path = awkward_dir / "f.txt"
    path.write_text("x")
    with pytest.raises(NotADirectoryError):
        run.upload_folder("x", path)


def test_upload_files_needs_equal_lengths(run: SubmittedRun, awkward_dir: Path) -> None:
    path = awkward_dir / "f.txt"
    path.write_text("x")
    with pytest.raises(TypeError, match="2 names and 1 paths"):
        run.upload_files(["a", "b"], [path])
    done = run.upload_files(["a", "b"], [path, io.BytesIO(b"y")], return_artifacts=True)
    assert done == [
        {"name": "a", "path": f"files/{RUN_ID}/a"},
        {"name": "b", "path": f"files/{RUN_ID}/b"},
    ]
    assert run.upload_files(["c"], [path]) is None


def test_upload_file_names_are_normalised(run: SubmittedRun, job_env: Path) -> None:
    done = run.upload_file("a\\b//c.txt", io.BytesIO(b"x"))
    assert done == {"name": "a/b/c.txt", "path": f"files/{RUN_ID}/a/b/c.txt"}
    with pytest.raises(ValueError):
        run.upload_file("../c.txt", io.BytesIO(b"x"))


def test_log_image_from_a_path(
    run: SubmittedRun, job_env: Path, read_records: Any, awkward_dir: Path
) -> None:
    image = awkward_dir / "pic ü.gif"
    image.write_bytes(b"GIF89a" + b"\0" * 10)
    run.log_image("pic", path=image, description="a gif")
    file_record, metric = _records(run, read_records, job_env)
    assert file_record["name"] == "pic ü.gif"
    assert metric["value"] == "pic ü.gif" and metric["desc"] == "a gif"
