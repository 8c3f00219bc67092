"""No value a script logs can drop a batch or stop the spool writer (probe D2, R2, R5).

An int too long to write is refused at ``log()`` time, naming the metric; whatever reaches the
writer anyway (straight through ``SpoolWriter.write``) costs at most its own record, kept as text
or as an ``error`` record, never the metrics and tags around it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.runtime import SpoolWriter, SubmittedRun, get_context
from ferry.runtime import spool as spool_module

RUN_ID = "exp_1718000000_ab12cd34"
HUGE = 10**5000


class BadRepr:
    """An object whose ``repr`` (and ``str``) raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def run(job_env: Path) -> SubmittedRun:
    found = get_context()
    assert isinstance(found, SubmittedRun)
    return found


@pytest.fixture
def writer(spool_dir: Path) -> Iterator[SpoolWriter]:
    w = SpoolWriter(spool_dir, flush_interval=3600)
    yield w
    w.close()


def _metric(name: str, value: Any, ts: float = 1.0) -> dict[str, Any]:
    return {"k": "metric", "run": RUN_ID, "ts": ts, "name": name, "type": "scalar", "value": value}


def _complete_lines(spool: Path) -> list[dict[str, Any]]:
    """Every complete line of every spool file (a torn last line is what readers skip too)."""
    lines: list[dict[str, Any]] = []
    for path in sorted(spool.glob("*.jsonl")):
        data = path.read_bytes()
        lines.extend(json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines())
    return lines


# -- refused at log() time ---------------------------------------------------------------------


def test_an_int_too_long_to_write_is_refused_naming_the_metric(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    run.log("good", 1)
    attempts = [
        lambda: run.log("bad", HUGE),
        lambda: run.log("bad", -HUGE),
        lambda: run.log("bad", 1, step=HUGE),
        lambda: run.log_list("bad", [1, HUGE]),
        lambda: run.log_row("bad", x=HUGE),
        lambda: run.log_table("bad", {"x": [HUGE]}),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError) as info:
            attempt()
        message = str(info.value)
        assert "'bad'" in message and "4,300 digits" in message, message
        assert "float(value)" in message and "str(value)" in message
    with pytest.raises((TypeError, ValueError), match="digits"):
        run.log_predictions("bad", {"x": HUGE})
    with pytest.raises(ValueError, match="digits"):
        run.log_residuals("bad", '{"x": ' + "9" * 5000 + "}")
    run.log("good", 2)
    run.tag("t", "v")
    run.flush()
    records = read_records(job_env)
    assert [(r["k"], r.get("name"), r.get("value")) for r in records] == [
        ("metric", "good", 1),
        ("metric", "good", 2),
        ("tags", None, None),
    ]


def test_ints_up_to_the_limit_are_stored_exactly(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    longest = 10**4300 - 1  # 4,300 nines: the longest int Python writes by default
    run.log("long", longest, step=10**30)
    run.log_list("longs", [longest, -longest])
    run.flush()
    first, second = read_records(job_env)
    assert first["value"] == longest and first["step"] == 10**30
    assert second["value"] == [longest, -longest]


def test_a_limit_the_script_lowered_is_respected(run: SubmittedRun) -> None:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        with pytest.raises(ValueError, match="more than 640 digits"):
            run.log("m", 10**700)
        run.log("m", 10**600)
    finally:
        sys.set_int_max_str_digits(before)


def test_objects_whose_repr_raises_are_refused_with_the_type_named(run: SubmittedRun) -> None:
    with pytest.raises(TypeError, match="BadRepr"):
        run.log("m", BadRepr())
    with pytest.raises(TypeError, match="BadRepr"):
        run.log_list("m", [BadRepr()])
    with pytest.raises(TypeError, match="BadRepr"):
        run.log("m", 1, step=BadRepr())  # type: ignore[arg-type]


def test_nesting_too_deep_for_json_is_refused(run: SubmittedRun) -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"x": deep}
    with pytest.raises(ValueError, match="nested too deeply"):
        run.log_predictions("p", deep)
    text = '{"x":' * 100_000 + "1" + "}" * 100_000
    with pytest.raises(ValueError, match="nested too deeply"):
        run.log_residuals("r", text)


def test_lone_surrogates_in_names_values_and_tags_reach_the_spool(
    run: SubmittedRun, job_env: Path, read_records: Any
) -> None:
    run.log("\udc80", "\udc80")
    run.log("ok", 1)
    run.tag("\udc80", "\ud800")
    run.flush()
    metric, ok, tags = read_records(job_env)
    assert (metric["name"], metric["value"]) == ("\udc80", "\udc80")
    assert ok["value"] == 1
    assert tags["set"] == {"\udc80": "\ud800"}
    for path in job_env.glob("*.jsonl"):
        path.read_bytes().decode("ascii")  # escaped: every line is valid UTF-8


# -- whatever reaches the writer costs at most its own record ------------------------------


def test_one_bad_record_costs_only_itself_never_its_batch(
    writer: SpoolWriter, spool_dir: Path
) -> None:
    writer.write(_metric("good", 1))
    writer.write(_metric("big", HUGE))
    writer.write({"k": "tags", "run": RUN_ID, "ts": 1.0, "set": {"a": "b"}})
    writer.write(_metric("deep", _deep_list(100_000)))
    writer.write(_metric("repr", BadRepr()))
    writer.write(_metric("\udc80", "\udc80"))
    writer.write([1, 2])  # type: ignore[arg-type]  # not a record at all
    writer.write({"k": "metric", "run": RUN_ID, "ts": 1.0, "name": ["unhashable"], "value": 3})
    writer.write({"k": "series", "run": RUN_ID, "name": "s", "values": [1, HUGE, 3], "ts": [1.0]})
    writer.write(_metric("good", 2))
    writer.write({"k": "tags", "run": RUN_ID, "ts": 1.0, "set": {"c": "d"}})
    writer.flush()
    lines = _complete_lines(spool_dir)
    assert len(lines) == 11
    assert [r["value"] for r in lines if r.get("name") == "good"] == [1, 2]
    assert [r["set"] for r in lines if r["k"] == "tags"] == [{"a": "b"}, {"c": "d"}]
    by_name = {r["name"]: r for r in lines if isinstance(r.get("name"), str)}
    assert by_name["big"]["value"] == "<int of 16610 bits, too long to write in decimal>"
    assert by_name["deep"]["value"] == "<list object; repr() raised RecursionError>"
    assert by_name["repr"]["value"] == "<BadRepr object; repr() raised RuntimeError>"
    assert by_name["\udc80"]["value"] == "\udc80"
    assert by_name["s"]["values"][0] == 1 and by_name["s"]["values"][2] == 3
    assert "too long" in by_name["s"]["values"][1]
    assert next(r for r in lines if r.get("name") == ["unhashable"])["value"] == 3
    (error,) = [r for r in lines if r["k"] == "error"]
    assert "must be a dict" in error["error"]


def test_the_spool_thread_survives_an_error_and_keeps_flushing(
    spool_dir: Path, read_records: Any
) -> None:
    writer = SpoolWriter(spool_dir, flush_interval=0.05)
    real_flush = writer._flush
    failures: list[int] = []

    def flaky_flush(raise_errors: bool) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("a bug in the flush")
        real_flush(raise_errors)

    writer._flush = flaky_flush  # type: ignore[method-assign]
    try:
        writer.write(_metric("m", 1))
        thread = writer._thread
        assert thread is not None
        deadline = time.monotonic() + 10
        while not list(spool_dir.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert failures == [1]
        assert thread.is_alive()
        writer.write(_metric("m", 2))
        while len(read_records(spool_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r["value"] for r in read_records(spool_dir)] == [1, 2]  # written by the thread
    finally:
        writer._flush = real_flush  # type: ignore[method-assign]
        writer.close()


def test_a_torn_write_is_finished_in_a_new_file_with_no_record_twice(
    writer: SpoolWriter, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = spool_module.os.write
    calls: list[int] = []

    def full_disk_after_150_bytes(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:150]))  # a line and a half …
        raise OSError(28, "No space left on device")  # … then the disk is full

    for i in range(5):
        writer.write({"k": "tags", "run": RUN_ID, "ts": 1.0, "set": {f"k{i}": "v" * 30}})
    monkeypatch.setattr(spool_module.os, "write", full_disk_after_150_bytes)
    with pytest.raises(OSError):
        writer.flush()
    monkeypatch.undo()
    writer.write({"k": "tags", "run": RUN_ID, "ts": 1.0, "set": {"k5": "v"}})
    writer.flush()
    keys = [next(iter(r["set"])) for r in _complete_lines(spool_dir)]
    assert sorted(keys) == ["k0", "k1", "k2", "k3", "k4", "k5"]  # each once (files: any order)
    files = list(spool_dir.glob("*.jsonl"))
    assert len(files) == 2
    torn = [f for f in files if not f.read_bytes().endswith(b"\n")]
    assert len(torn) == 1 and torn[0].stat().st_size == 150  # left at the old file's end


def test_a_writer_thread_failure_is_one_line_on_stderr(
    spool_dir: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SpoolWriter(spool_dir, flush_interval=0.05)
    monkeypatch.setattr(
        spool_module.os, "write", lambda fd, data: (_ for _ in ()).throw(RuntimeError("odd"))
    )
    try:
        writer.write(_metric("m", 1))
        deadline = time.monotonic() + 10
        while writer.batches_written == 0 and not writer._pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer._pending  # kept for the next attempt
        thread = writer._thread
        assert thread is not None and thread.is_alive()
    finally:
        monkeypatch.undo()
        writer.close()
    err = capfd.readouterr().err
    assert err.count("ferry: cannot write the metric spool: RuntimeError('odd')") == 1
    assert "Traceback" not in err
    assert writer.batches_written == 1  # close() wrote what was kept


# -- the probe's reproduction, in a real interpreter ------------------------------------------

_D2_SCRIPT = """
from ferry_runtime import get_context
r = get_context()
r.log("good", 1)
try:
    r.log("bad", 10**5000)
except ValueError as exc:
    print("refused:", exc)
r.log("good", 2)
r.tag("t", "v")
r._writer.write({"k": "metric", "run": r.id, "ts": 1.0, "name": "raw", "value": 10**5000})
r.log("after", 3)
"""


def test_the_probes_big_int_script_keeps_every_other_record(
    runtime_path: Path, spool_dir: Path, run_python: Any, job_vars: Any, read_records: Any
) -> None:
    done = run_python(_D2_SCRIPT, pythonpath=[runtime_path], env=job_vars(spool_dir))
    assert done.stdout.startswith("refused: run.log 'bad': an int of more than 4,300 digits")
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    records = read_records(spool_dir)
    assert [(r["k"], r.get("name"), r.get("value")) for r in records] == [
        ("metric", "good", 1),
        ("metric", "good", 2),
        ("tags", None, None),
        ("metric", "raw", "<int of 16610 bits, too long to write in decimal>"),
        ("metric", "after", 3),
    ]


def test_offline_lines_with_lone_surrogates_do_not_raise(
    runtime_path: Path, run_python: Any
) -> None:
    done = run_python(
        "from ferry_runtime import get_context\n"
        "r = get_context()\n"
        "r.log('\\udc80', '\\udc80'); r.tag('k', '\\ud800'); print('done')\n",
        pythonpath=[runtime_path],
    )
    assert done.stdout.splitlines() == [
        "Attempted to log scalar metric \\udc80:",
        "\\udc80",
        "Attempted to add tag k with value \\ud800",
        "done",
    ]


def test_no_thread_is_left_behind_by_a_closed_writer(spool_dir: Path) -> None:
    before = {t.ident for t in threading.enumerate()}
    writer = SpoolWriter(spool_dir)
    writer.write(_metric("m", 1))
    assert writer in set(spool_module._live)
    writer.close()
    assert {t.ident for t in threading.enumerate()} <= before
    assert writer not in set(spool_module._live)
    assert writer._fd is None
