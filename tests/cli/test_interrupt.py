"""Ctrl-C on a waiting ``ferry submit`` stops the following, not the run (probe M1, 1.9).

The real console script runs in a subprocess (in-process, ``FERRY_NO_DAEMON=1``) and gets SIGINT
once its run is Running, as a terminal's Ctrl-C would deliver it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

FERRY = Path(sys.executable).with_name("ferry")

SCRIPT = """
import os, sys, time
from ferry import Run
run = Run.get_context()
print("started", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
run.log("went_on", 1)
"""


def _status(db: Path) -> tuple[str, str] | None:
    """(run id, status) of the only run, read without disturbing the live supervisor."""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("select id, status from runs").fetchone()
    except sqlite3.OperationalError:  # the schema is not there yet
        return None
    finally:
        conn.close()
    return None if row is None else (str(row[0]), str(row[1]))


def _wait_for(db: Path, wanted: str, deadline_s: float) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        row = _status(db)
        if row is not None and row[1] == wanted:
            return row[0]
        assert time.monotonic() < deadline, f"run is {row} after {deadline_s} s, not {wanted}"
        time.sleep(0.05)


def test_ctrl_c_on_a_waiting_submit_says_the_run_goes_on(awkward_dir: Path) -> None:
    home = awkward_dir / "home"
    project = awkward_dir / "proj"
    project.mkdir()
    (project / "train.py").write_text(SCRIPT)
    release = awkward_dir / "release"
    env = {**os.environ, "FERRY_NO_DAEMON": "1", "FERRY_HOME": str(home)}
    proc = subprocess.Popen(
        [str(FERRY), "submit", str(project / "train.py"), "-e", "ctrlc", "--", str(release)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = _wait_for(home / "ferry.db", "Running", 60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (out, err)
    assert (
        f"ferry: stopped following {run_id}; the run continues "
        f"(ferry runs logs -f {run_id} / ferry runs cancel {run_id})"
    ) in err
    assert "Traceback" not in err and "aborted" not in err
    assert _status(home / "ferry.db") == (run_id, "Running")
    release.touch()  # the run goes on to its end without the client
    _wait_for(home / "ferry.db", "Completed", 60)
    db = sqlite3.connect(f"file:{home / 'ferry.db'}?mode=ro", uri=True)
    try:
        assert db.execute("select count(*) from metric_series where name = 'went_on'").fetchone()[0]
    finally:
        db.close()
