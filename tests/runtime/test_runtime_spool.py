"""The spool writer: whole lines, batches, background and exit flushes, threads, forks, files."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferry.runtime.spool import SpoolWriter


@pytest.fixture
def writer(spool_dir: Path) -> Iterator[SpoolWriter]:
    w = SpoolWriter(spool_dir)
    yield w
    w.close()


@pytest.fixture
def slow_writer(spool_dir: Path) -> Iterator[SpoolWriter]:
    """A writer whose background thread never flushes on its own during a test."""
    w = SpoolWriter(spool_dir, flush_interval=3600)
    yield w
    w.close()


def _record(i: int) -> dict[str, Any]:
    return {"k": "metric", "run": "r", "ts": 1.0, "name": "m", "type": "scalar", "value": i}


def test_nothing_is_written_before_the_first_flush(
    slow_writer: SpoolWriter, spool_dir: Path
) -> None:
    slow_writer.write(_record(1))
    assert not list(spool_dir.glob("*.jsonl"))
    slow_writer.flush()
    assert len(list(spool_dir.glob("*.jsonl"))) == 1


def test_file_is_named_pid_dash_8_hex(slow_writer: SpoolWriter, spool_dir: Path) -> None:
    import os
    import re

    slow_writer.write(_record(1))
    slow_writer.flush()
    (path,) = spool_dir.glob("*.jsonl")
    assert re.fullmatch(rf"{os.getpid()}-[0-9a-f]{{8}}\.jsonl", path.name)
    assert slow_writer.path == str(path)


def test_many_records_go_out_in_few_writes(
    slow_writer: SpoolWriter, spool_dir: Path, read_records: Any
) -> None:
    for i in range(9_999):
        slow_writer.write(_record(i))
    assert slow_writer.batches_written == 0
    slow_writer.flush()
    assert slow_writer.batches_written == 1
    assert [r["value"] for r in read_records(spool_dir)] == list(range(9_999))


def test_ten_thousand_waiting_records_are_written_without_a_flush(
    slow_writer: SpoolWriter, spool_dir: Path, read_records: Any
) -> None:
    for i in range(10_000):
        slow_writer.write(_record(i))
    assert slow_writer.batches_written == 1
    assert len(read_records(spool_dir)) == 10_000


def test_background_thread_flushes_within_a_fraction_of_a_second(
    writer: SpoolWriter, spool_dir: Path, read_records: Any
) -> None:
    writer.write(_record(1))
    deadline = time.monotonic() + 5
    while not read_records(spool_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["value"] for r in read_records(spool_dir)] == [1]
    assert writer.batches_written == 1


def test_records_are_compact_ascii_json_lines(slow_writer: SpoolWriter, spool_dir: Path) -> None:
    slow_writer.write(
        {"k": "metric", "run": "r", "ts": 1.5, "name": 'ü "q"\n', "value": float("nan")}
    )
    slow_writer.flush()
    (path,) = spool_dir.glob("*.jsonl")
    data = path.read_bytes()
    assert data.isascii()
    assert data.count(b"\n") == 1 and data.endswith(b"\n")
    record = json.loads(data)
    assert record["name"] == 'ü "q"\n'
    assert record["value"] != record["value"]  # NaN round-trips


def test_concurrent_writers_lose_and_tear_nothing(
    writer: SpoolWriter, spool_dir: Path, read_records: Any
) -> None:
    def work(t: int) -> None:
        for i in range(3_000):
            writer.write({"k": "metric", "run": "r", "ts": 0.0, "name": f"t{t}", "value": i})
            if i % 500 == 0:
                writer.flush()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    records = read_records(spool_dir)
    assert len(records) == 8 * 3_000
    for t in range(8):
        assert [r["value"] for r in records if r["name"] == f"t{t}"] == list(range(3_000))


def test_unserialisable_values_do_not_lose_the_batch(
    slow_writer: SpoolWriter, spool_dir: Path, read_records: Any
) -> None:
    slow_writer.write(_record(1))
    slow_writer.write({"k": "metric", "run": "r", "ts": 1.0, "value": object()})
    slow_writer.write(_record(3))
    slow_writer.flush()
    values = [r["value"] for r in read_records(spool_dir)]
    assert [v for v in values if isinstance(v, int)] == [1, 3]  # order kept within a metric
    assert next(v for v in values if isinstance(v, str)).startswith("<object object")

    slow_writer.write(_record(4))
    slow_writer.write(dict(_record(5), value=object()))  # inside a series this time
    slow_writer.flush()
    values = [r["value"] for r in read_records(spool_dir)][3:]
    assert values[0] == 4 and values[1].startswith("<object object")


def test_failed_write_keeps_the_records_for_the_next_flush(
    slow_writer: SpoolWriter, spool_dir: Path, read_records: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ferry.runtime.spool as spool

    slow_writer.write(_record(1))

    def broken(fd: int, data: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool.os, "write", broken)
    with pytest.raises(OSError):
        slow_writer.flush()
    monkeypatch.undo()
    slow_writer.write(_record(2))
    slow_writer.flush()
    assert [r["value"] for r in read_records(spool_dir)] == [1, 2]


def test_a_full_disk_never_breaks_log_calls(
    spool_dir: Path, read_records: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ferry.runtime.spool as spool

    writer = SpoolWriter(spool_dir, flush_interval=3600, max_batch=5)
    calls: list[int] = []

    def broken(fd: int, data: Any) -> int:
        calls.append(len(data))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool.os, "write", broken)
    try:
        for i in range(20):
            writer.write(_record(i))  # reaches max_batch several times: must not raise
        assert len(calls) == 1  # one failed attempt, then automatic retries wait
        monkeypatch.undo()
        writer.flush()
        assert [r["value"] for r in read_records(spool_dir)] == list(range(20))
    finally:
        writer.close()


def test_copy_file_in_from_a_path_is_atomic_and_relative(
    slow_writer: SpoolWriter, spool_dir: Path, awkward_dir: Path
) -> None:
    source = awkward_dir / "mödel 'v1'.bin"
    source.write_bytes(b"\x00\x01" * 100_000)
    relative = slow_writer.copy_file_in("run_1", "models/mödel 'v1' \"x\".bin", source)
    assert relative == "files/run_1/models/mödel 'v1' \"x\".bin"
    assert (spool_dir / relative).read_bytes() == source.read_bytes()
    leftovers = [p for p in (spool_dir / "files").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_copy_file_in_from_streams(slow_writer: SpoolWriter, spool_dir: Path) -> None:
    binary = slow_writer.copy_file_in("run_1", "b.bin", io.BytesIO(b"abc"))
    text = slow_writer.copy_file_in("run_1", "t.txt", io.StringIO("héllo"))
    assert (spool_dir / binary).read_bytes() == b"abc"
    assert (spool_dir / text).read_text(encoding="utf-8") == "héllo"


def test_copy_file_in_replaces_an_earlier_upload(slow_writer: SpoolWriter, spool_dir: Path) -> None:
    slow_writer.copy_file_in("run_1", "a.txt", io.BytesIO(b"old"))
    relative = slow_writer.copy_file_in("run_1", "a.txt", io.BytesIO(b"new"))
    assert (spool_dir / relative).read_bytes() == b"new"


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "C:\\x", ""])
def test_copy_file_in_refuses_names_outside_the_folder(
    slow_writer: SpoolWriter, spool_dir: Path, name: str
) -> None:
    with pytest.raises(ValueError):
        slow_writer.copy_file_in("run_1", name, io.BytesIO(b"x"))
    assert not (spool_dir / "files").exists() or not any((spool_dir / "files").rglob("*.part"))


def test_copy_file_in_refuses_bad_run_ids(slow_writer: SpoolWriter) -> None:
    with pytest.raises(ValueError):
        slow_writer.copy_file_in("../run", "a.txt", io.BytesIO(b"x"))


def test_failed_copy_leaves_no_temporary_file(
    slow_writer: SpoolWriter, spool_dir: Path, awkward_dir: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        slow_writer.copy_file_in("run_1", "missing.txt", awkward_dir / "does not exist")
    assert list((spool_dir / "files").rglob("*")) == [spool_dir / "files" / "run_1"]


_EXIT_SCRIPT = """
import sys
from ferry_runtime import get_context
run = get_context()
for i in range(5):
    run.log("m", i)
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "code"),
    [("pass", 0), ("sys.exit(3)", 3), ("raise RuntimeError('boom')", 1)],
)
def test_records_are_flushed_at_interpreter_exit(
    runtime_path: Path,
    spool_dir: Path,
    run_python: Any,
    job_vars: Any,
    read_records: Any,
    ending: str,
    code: int,
) -> None:
    done = run_python(
        _EXIT_SCRIPT.format(ending=ending),
        pythonpath=[runtime_path],
        env=job_vars(spool_dir),
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert [r["value"] for r in read_records(spool_dir)] == [0, 1, 2, 3, 4]


_FORK_SCRIPT = """
import os
from ferry_runtime import get_context
run = get_context()
run.log("before", 1)              # still queued in the parent at fork time
pid = os.fork()
if pid == 0:
    run.log("child", 2)
    run.flush()
    os._exit(0)
os.waitpid(pid, 0)
run.log("after", 3)
run.flush()
print(os.getpid(), pid)
"""


def test_a_forked_child_writes_its_own_file_and_not_the_parents_records(
    runtime_path: Path, spool_dir: Path, run_python: Any, job_vars: Any, read_records: Any
) -> None:
    done = run_python(_FORK_SCRIPT, pythonpath=[runtime_path], env=job_vars(spool_dir))
    parent_pid, child_pid = done.stdout.split()
    files = {p.name.split("-")[0]: p for p in spool_dir.glob("*.jsonl")}
    assert set(files) == {parent_pid, child_pid}
    parent_names = [json.loads(line)["name"] for line in files[parent_pid].read_text().splitlines()]
    child_names = [json.loads(line)["name"] for line in files[child_pid].read_text().splitlines()]
    assert parent_names == ["before", "after"]
    assert child_names == ["child"]


_MP_SCRIPT = """
import multiprocessing
from ferry_runtime import get_context

def work(i):
    get_context().log("mp", i)   # no flush: the worker leaves through os._exit()

if __name__ == "__main__":
    get_context().log("main", -1)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=work, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert all(w.exitcode == 0 for w in workers)
"""


def test_multiprocessing_fork_workers_flush_on_exit(
    runtime_path: Path,
    spool_dir: Path,
    run_python: Any,
    job_vars: Any,
    read_records: Any,
    tmp_path: Path,
) -> None:
    script = tmp_path / "mp_job.py"
    script.write_text(_MP_SCRIPT)
    run_python(
        f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
        pythonpath=[runtime_path],
        env=job_vars(spool_dir),
    )
    records = read_records(spool_dir)
    assert sorted(r["value"] for r in records if r["name"] == "mp") == [0, 1, 2]
    assert [r["value"] for r in records if r["name"] == "main"] == [-1]


def test_repeated_values_travel_as_one_columnar_series_record(tmp_path: Path) -> None:
    import json

    from ferry.runtime.spool import SpoolWriter

    writer = SpoolWriter(str(tmp_path))
    for i in range(1000):
        writer.write(
            {
                "k": "metric",
                "run": "e_1_abcdef12",
                "ts": 1.0,
                "name": "loss",
                "type": "scalar",
                "value": i,
                "step": None,
                "desc": "",
            }
        )
    writer.write({"k": "tags", "run": "e_1_abcdef12", "ts": 1.0, "set": {"a": "b"}})
    writer.write(
        {
            "k": "metric",
            "run": "e_1_abcdef12",
            "ts": 2.0,
            "name": "loss",
            "type": "scalar",
            "value": -1,
            "step": 3,
            "desc": "",
        }
    )
    writer.flush()
    lines = [
        json.loads(line) for p in tmp_path.glob("*.jsonl") for line in p.read_text().splitlines()
    ]
    assert [r["k"] for r in lines] == ["series", "tags", "metric"]
    assert lines[0]["values"] == list(range(1000)) and lines[0]["steps"] is None
    assert lines[0]["ts"] == [1.0] * 1000
