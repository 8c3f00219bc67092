"""The agent shipped to SSH hosts, without SSH: its stream, its jobs under the watchdog, and its
build recipes. (The store it uses is tested in tests/agent/test_store.py; that it runs on Python
3.8 is proved by running it there: see test_ssh_python38.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ferry.agent import hostenv, jobs
from ferry.agent.proc import pid_alive
from ferry.agent.serve import Follower
from ferry.envbuild import spechash
from ferry.testing.conformance import wait_until


class Frames:
    """What a follower sends, kept (the agent's ``Out``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], bytes]] = []

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        self.sent.append((header, payload))


def test_follower_sends_files_before_the_records_naming_them(awkward_dir: Path) -> None:
    run = awkward_dir / "run"
    (run / "spool" / "files" / "r1").mkdir(parents=True)
    (run / "wd" / "logs").mkdir(parents=True)
    (run / "wd" / "tb events").mkdir(parents=True)
    (run / "user_logs").mkdir()
    (run / "spool" / "files" / "r1" / "plot ü.png").write_bytes(b"png")
    (run / "spool" / "files" / "r1" / ".ferry-ab.part").write_bytes(b"half")
    (run / "spool" / "1-ab.jsonl").write_text('{"k": "file"}\n')
    (run / "wd" / "logs" / "progress.txt").write_text("50%")
    (run / "wd" / "tb events" / "e.1").write_text("event")
    (run / "user_logs" / "std_log.txt").write_text("line\n")
    out = Frames()
    follower = Follower(out, str(run), {}, ["logs", "tb events"])  # type: ignore[arg-type]
    follower.scan()
    names = [h["f"] for h, _ in out.sent]
    assert names.index("spool/files/r1/plot ü.png") < names.index("spool/1-ab.jsonl")
    assert not any(".part" in n for n in names)
    assert "wd/tb events/e.1" in names  # every watched folder, not only ./logs
    out.sent.clear()
    follower.scan()
    assert out.sent == []  # nothing new
    time.sleep(0.01)
    (run / "wd" / "logs" / "progress.txt").write_text("60%")  # rewritten in place, same size
    with open(run / "user_logs" / "std_log.txt", "a") as fh:
        fh.write("more\n")
    follower.scan()
    sent = {h["f"]: (h, data) for h, data in out.sent}
    assert sent["wd/logs/progress.txt"][0]["reset"] and sent["wd/logs/progress.txt"][1] == b"60%"
    log_header, log_data = sent["user_logs/std_log.txt"]
    assert log_data == b"more\n" and log_header["pos"] == 10  # where the stream is now
    resumed = Follower(Frames(), str(run), {"user_logs/std_log.txt": 5}, [])  # type: ignore[arg-type]
    resumed.scan()
    assert dict((h["f"], d) for h, d in resumed.out.sent)["user_logs/std_log.txt"] == b"more\n"  # type: ignore[attr-defined]


def _launch(run: Path, code: str, lease: float, **extra: Any) -> dict[str, Any]:
    (run / "wd").mkdir(parents=True)
    request = {"argv": [sys.executable, "-c", code], "lease": lease, "grace": 1, **extra}
    return jobs.launch(str(run), request)


def _exit(run: Path) -> dict[str, Any]:
    wait_until(lambda: (run / "exit.json").exists(), timeout=15, what="the job's exit")
    result: dict[str, Any] = json.loads((run / "exit.json").read_text())
    return result


def test_a_job_runs_detached_under_its_watchdog(awkward_dir: Path) -> None:
    run = awkward_dir / "run ok"
    code = "import os; open('outputs/x', 'w').write('1'); print(os.environ['FERRY_X'])"
    status = _launch(run, code, 30, set={"FERRY_X": "from the request"})
    assert status["pid"] != os.getpid() and os.getsid(status["pid"]) == status["pid"]
    assert jobs.watchdog_alive(str(run)) or (run / "exit.json").exists()
    result = _exit(run)
    assert (result["code"], result["reason"]) == (0, "exit")
    assert (run / "user_logs" / "std_log.txt").read_text() == "from the request\n"
    assert Follower(Frames(), str(run), {}).result(str(run / "exit.json"))["outputs"] is True  # type: ignore[arg-type]
    wait_until(lambda: not jobs.watchdog_alive(str(run)), timeout=10, what="the watchdog's end")


def test_the_lease_stops_the_job_when_nobody_follows(awkward_dir: Path) -> None:
    run = awkward_dir / "run lease"
    _launch(run, "import time; time.sleep(60)", 0.5)
    result = _exit(run)
    assert result["reason"] == "lease" and result["code"] < 0
    assert "the job's watchdog stops the job" in (run / "user_logs" / "std_log.txt").read_text()


def test_cancel_stops_children_that_left_the_group(awkward_dir: Path) -> None:
    """The watchdog is a subreaper: children in new sessions or groups go with the job."""
    run = awkward_dir / "run cancel"
    code = (
        "import os, subprocess, sys, time\n"
        "ignore = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'\n"
        "kids = [subprocess.Popen([sys.executable, '-c', ignore]),\n"
        "        subprocess.Popen(['sleep', '60'], start_new_session=True),\n"
        "        subprocess.Popen(['sleep', '60'], process_group=0)]\n"
        "open('pids.tmp', 'w').write(' '.join(str(k.pid) for k in kids))\n"
        "os.replace('pids.tmp', 'pids')\n"
        "time.sleep(60)\n"
    )
    _launch(run, code, 30)
    wait_until(lambda: (run / "wd" / "pids").exists(), what="the children")
    children = [int(p) for p in (run / "wd" / "pids").read_text().split()]
    assert jobs.cancel(str(run), grace=0.5)
    result = _exit(run)
    assert result["reason"] == "cancel" and result["code"] == -signal.SIGTERM
    wait_until(lambda: not any(pid_alive(c) for c in children), timeout=10, what="the children")


def test_a_watchdog_killed_from_outside_is_seen_as_lost(awkward_dir: Path) -> None:
    run = awkward_dir / "run lost"
    status = _launch(run, "import time; time.sleep(60)", 30)
    assert jobs.watchdog_alive(str(run))
    os.kill(status["pid"], signal.SIGKILL)
    wait_until(lambda: not jobs.watchdog_alive(str(run)), timeout=10, what="the watchdog's death")
    out = Frames()
    follower = Follower(out, str(run), {})  # type: ignore[arg-type]
    follower.start()
    follower.join(10)
    assert out.sent[-1][0] == {"t": "exit", "lost": True, "code": None, "reason": "lost"}


def test_a_command_that_cannot_start_is_reported(awkward_dir: Path) -> None:
    run = awkward_dir / "run missing"
    (run / "wd").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="cannot start"):
        jobs.launch(str(run), {"argv": ["/no/such/python"], "lease": 5, "grace": 1})


def test_the_agent_names_its_recipes_as_the_hash_does() -> None:
    """The agent cannot import ferry, so it repeats the names; they must not drift apart."""
    assert hostenv.RECIPE_UV == spechash.AGENT_UV_RECIPE
    assert hostenv.RECIPE_VENV == spechash.AGENT_VENV_RECIPE
    assert hostenv.RECIPE_ANY == spechash.AGENT_RECIPE
    recipes = (hostenv.RECIPE_UV, hostenv.RECIPE_VENV, hostenv.RECIPE_ANY)
    assert spechash.LOCAL_RECIPE not in recipes


def _build(root: Path, recipe: str, uv: str) -> tuple[dict[str, Any], list[str]]:
    said: list[str] = []
    request = {"hash": hashlib.sha256(recipe.encode()).hexdigest()[:32], "interpreter":
               sys.executable, "packages": [], "uv": uv, "recipe": recipe}  # fmt: skip
    return hostenv.build_env(str(root), request, said.append), said


def test_the_agent_builds_with_the_recipe_the_hash_names(awkward_dir: Path) -> None:
    uv = str(Path(sys.executable).with_name("uv"))
    assert os.access(uv, os.X_OK), "uv is installed in ferry's virtual environment"
    facts, said = _build(awkward_dir, hostenv.RECIPE_VENV, uv)  # uv is here, yet not used
    assert any("-m venv" in line for line in said) and not any(uv in line for line in said)
    assert os.access(facts["python"], os.X_OK)
    facts, said = _build(awkward_dir, hostenv.RECIPE_UV, uv)
    assert said[0] == f"building with {uv}" and os.access(facts["python"], os.X_OK)


def test_the_agent_refuses_a_uv_build_without_uv(awkward_dir: Path) -> None:
    """Falling back to venv would build something else than the hash stands for."""
    with pytest.raises(RuntimeError, match="is not on this host"):
        _build(awkward_dir, hostenv.RECIPE_UV, str(awkward_dir / "no uv"))
    with pytest.raises(RuntimeError, match="does not know the build recipe"):
        _build(awkward_dir, "agent-uv-99", "")
    assert [p.name for p in (awkward_dir / "envs").iterdir() if not p.name.startswith(".")] == []
