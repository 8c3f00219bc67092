"""Odd values never crash the CLI, and --json is strict JSON (probe R2, R3, M4).

Values are stored through the store API, as a job's spool would store them, then read back
through the real ``main()``: tables escape what a terminal must not receive, JSON spells
non-finite floats as strings, and bytes that are not UTF-8 in an argument are a clear error.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest
from nothing_submitted import assert_no_runs

from ferry.cli.render import strict, text, to_json
from ferry.status import RunStatus
from ferry.tracking import MetricRecord, RunRecord
from ferry.workspace import Workspace

SURROGATE = "bad \udc80 value"
ODD_METRICS: dict[str, Any] = {
    "surrogate": SURROGATE,
    "nan": math.nan,
    "inf": math.inf,
    "ninf": -math.inf,
    "big": 1e308,
    "huge_int": 10**100,
    "escape\x1b[2J": "clear\x1b[2J screen\x07",
    "[/nope]": "[bold red]markup[/]",
    "newline": "a\nb",
    "long": "x" * 100_000,
}


def _strict_loads(out: str) -> Any:
    def refuse(constant: str) -> NoReturn:
        raise AssertionError(f"non-strict JSON constant {constant} in the output")

    return json.loads(out, parse_constant=refuse)


@pytest.fixture
def odd_run(awkward_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # wide tables: escapes are not folded across lines
    ws = Workspace.create(awkward_dir / "cli ws")
    run_id = "odd_1700000000_0badc0de"
    now = time.time()
    ws.store.create_run(
        RunRecord(
            id=run_id,
            experiment="odd",
            status=RunStatus.RUNNING,
            created_at=now,
            definition={"script": "t\x1b.py", "arguments": ["--x", "\x07", math.nan]},
        )
    )
    ws.store.log_metrics(
        [
            MetricRecord(run_id, name, "scalar", value, None, "", now)
            for name, value in ODD_METRICS.items()
        ]
        + [
            MetricRecord(run_id, "series", "scalar", v, i, "", now)
            for i, v in enumerate([1.0, math.nan, math.inf])
        ]
    )
    ws.store.set_tags(run_id, {"tag\x1b": "v\x1b[31m", "[/]": "[/]"})
    ws.store.set_status(run_id, RunStatus.COMPLETED)
    ws.store.close()
    return run_id


def test_json_output_is_strict(ferry, odd_run: str) -> None:  # type: ignore[no-untyped-def]
    shown = ferry("runs", "show", odd_run, "--json")
    assert shown.code == 0, shown.err
    details = _strict_loads(shown.out)
    metrics = details["metrics"]
    assert (metrics["nan"], metrics["inf"], metrics["ninf"]) == ("NaN", "Infinity", "-Infinity")
    assert metrics["series"] == [1.0, "NaN", "Infinity"]
    assert metrics["surrogate"] == SURROGATE and metrics["huge_int"] == 10**100
    assert metrics["big"] == 1e308 and metrics["long"] == "x" * 100_000
    assert details["runDefinition"]["arguments"] == ["--x", "\x07", "NaN"]
    assert details["tags"] == {"tag\x1b": "v\x1b[31m", "[/]": "[/]"}
    res = ferry("runs", "metrics", odd_run, "--json")
    assert res.code == 0 and _strict_loads(res.out) == metrics
    listed = ferry("runs", "list", "--json")
    assert listed.code == 0 and _strict_loads(listed.out)[0]["runId"] == odd_run


@pytest.mark.parametrize("command", ["show", "metrics"])
def test_tables_escape_odd_values(ferry, odd_run: str, command: str) -> None:  # type: ignore[no-untyped-def]
    res = ferry("runs", command, odd_run)
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    assert "\x1b" not in res.out and "\x07" not in res.out  # no terminal control reaches it
    assert "bad \\udc80 value" in res.out  # the lone surrogate, escaped
    assert "escape\\x1b[2J" in res.out and "clear\\x1b[2J screen\\x07" in res.out
    assert "[bold red]markup[/]" in res.out  # printed as text, not parsed as markup
    assert "a\\nb" in res.out
    assert "nan" in res.out and "inf" in res.out
    assert max(map(len, res.out.splitlines())) < 1000  # the 100,000-character value is cut
    if command == "show":
        assert "[/]" in res.out and "v\\x1b[31m" in res.out


def test_runs_list_table_with_odd_values(ferry, odd_run: str) -> None:  # type: ignore[no-untyped-def]
    res = ferry("runs", "list")
    assert res.code == 0 and odd_run in res.out and "Completed" in res.out


def test_render_helpers_on_values_the_store_cannot_hold() -> None:
    huge = 10**5000  # str() refuses it (the interpreter's 4,300-digit limit)
    assert text(huge) == "<an integer of about 5001 digits>"
    # all its digits, as a string: a 5,001-digit JSON number is past what many readers accept
    assert _strict_loads(to_json({"v": huge}))["v"] == "1" + "0" * 5000
    assert strict({"a": (math.nan, -math.inf), 1: [math.inf]}) == {
        "a": ["NaN", "-Infinity"],
        "1": ["Infinity"],
    }
    assert text("\udcff\x00\x7f\u200b\U000e0001ok") == "\\udcff\\x00\\x7f\\u200b\\U000e0001ok"
    assert text("y" * 50, limit=10) == "y" * 9 + "…"
    assert text("ünïcödé 名前 ok") == "ünïcödé 名前 ok"


@pytest.mark.parametrize(
    "args",
    [
        ["--tag", "k=\udcff"],
        ["-e", "exp\udcff"],
        ["--source-dir", "dir\udcff"],
        ["--", "--arg", "v\udcff"],
    ],
    ids=["tag", "experiment", "path", "script-argument"],
)
def test_bytes_that_are_not_utf8_in_an_argument_are_a_clear_error(
    ferry, awkward_dir: Path, args: list[str]
) -> None:  # type: ignore[no-untyped-def]
    script = awkward_dir / "proj" / "train.py"
    script.parent.mkdir()
    script.write_text("print('hi')\n")
    res = ferry("submit", str(script), *args)
    assert res.code == 2, res.err
    assert "holds bytes that are not UTF-8" in res.err and "\\xff" in res.err
    assert "Traceback" not in res.err
    assert_no_runs(ferry)


def test_a_non_utf8_tag_from_a_real_shell(awkward_dir: Path) -> None:
    """The probe's R3 as a user types it: the argument's bytes come from the OS, not Python."""
    script = awkward_dir / "train.py"
    script.write_text("print('hi')\n")
    ferry_exe = Path(sys.executable).with_name("ferry")
    env = {**os.environ, "FERRY_NO_DAEMON": "1", "FERRY_HOME": str(awkward_dir / "home")}
    argv = [os.fsencode(ferry_exe), b"submit", os.fsencode(script), b"--tag", b"k=\xff"]
    res = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 2, err
    assert "holds bytes that are not UTF-8" in err and "Traceback" not in err
