"""The agent shipped to SSH hosts, without SSH: its cache, stream, watchdog and build recipes.

That it runs on Python 3.8 is proved by running it there: see test_ssh_python38.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ferry.envbuild import spechash
from ferry.targets.ssh.agent import envs, job
from ferry.targets.ssh.agent.serve import Follower
from ferry.targets.ssh.agent.store import Store
from ferry.testing.conformance import wait_until


def _blob(store: Store, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = Path(store.blob(digest))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def _manifest(entries: dict[str, Any]) -> dict[str, Any]:
    return {"algo": "sha256", "entries": entries, "version": 1}


def test_materialize_copies_modes_and_reports_corrupt_blobs(awkward_dir: Path) -> None:
    store = Store(str(awkward_dir / "work"))
    good = _blob(store, b"print('hi')\n")
    bad = _blob(store, b"original")
    Path(store.blob(bad)).write_bytes(b"tampered")
    entries = {
        "a b/run.sh": {"digest": good, "mode": 0o755, "size": 12},
        "x ü.txt": {"digest": bad, "mode": 0o644, "size": 8},
    }
    dest = awkward_dir / "wd"
    result = store.materialize(_manifest(entries), str(dest))
    assert result["missing"] == [bad]
    assert not dest.exists() and not Path(store.blob(bad)).exists()
    Path(store.blob(bad)).write_bytes(b"original")
    result = store.materialize(_manifest(entries), str(dest))
    assert result["missing"] == []
    assert (dest / "a b" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (dest / "x ü.txt").read_bytes() == b"original"


@pytest.mark.parametrize(
    "entries",
    [
        {"../evil": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
        {"/abs": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
        {"a": {"link": "x"}, "a/b": {"digest": "0" * 64, "mode": 0o644, "size": 0}},
    ],
)
def test_materialize_refuses_unsafe_manifests(awkward_dir: Path, entries: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Store(str(awkward_dir)).materialize(_manifest(entries), str(awkward_dir / "wd"))


def test_unpack_keeps_good_blobs_and_names_bad_ones(awkward_dir: Path) -> None:
    store = Store(str(awkward_dir))
    (awkward_dir / "tmp").mkdir()
    good, bad = b"good bytes", b"bad bytes"
    pack = b""
    for digest, data in ((hashlib.sha256(good).hexdigest(), good), ("f" * 64, bad)):
        pack += digest.encode() + len(data).to_bytes(8, "big") + data
        Path(store.blob(digest)).parent.mkdir(parents=True, exist_ok=True)
    (awkward_dir / "tmp" / "pack-1").write_bytes(pack)
    assert store.unpack("pack-1", "sha256") == ["f" * 64]
    assert Path(store.blob(hashlib.sha256(good).hexdigest())).read_bytes() == good
    assert not (awkward_dir / "tmp" / "pack-1").exists()


class _Frames:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], bytes]] = []

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        self.sent.append((header, payload))


def test_follower_sends_files_before_the_records_naming_them(awkward_dir: Path) -> None:
    run = awkward_dir / "run"
    (run / "spool" / "files" / "r1").mkdir(parents=True)
    (run / "wd" / "logs").mkdir(parents=True)
    (run / "user_logs").mkdir()
    (run / "spool" / "files" / "r1" / "plot ü.png").write_bytes(b"png")
    (run / "spool" / "files" / "r1" / ".ferry-ab.part").write_bytes(b"half")
    (run / "spool" / "1-ab.jsonl").write_text('{"k": "file"}\n')
    (run / "wd" / "logs" / "progress.txt").write_text("50%")
    (run / "user_logs" / "std_log.txt").write_text("line\n")
    out = _Frames()
    follower = Follower(out, str(run), {})  # type: ignore[arg-type]
    follower.scan()
    names = [h["f"] for h, _ in out.sent]
    assert names.index("spool/files/r1/plot ü.png") < names.index("spool/1-ab.jsonl")
    assert not any(".part" in n for n in names)
    out.sent.clear()
    follower.scan()
    assert out.sent == []  # nothing new
    time.sleep(0.01)
    (run / "wd" / "logs" / "progress.txt").write_text("60%")  # rewritten in place, same size
    with open(run / "user_logs" / "std_log.txt", "a") as fh:
        fh.write("more\n")
    follower.scan()
    sent = {h["f"]: (h["reset"], data) for h, data in out.sent}
    assert sent["wd/logs/progress.txt"] == (True, b"60%")
    assert sent["user_logs/std_log.txt"] == (False, b"more\n")
    resumed = Follower(_Frames(), str(run), {"user_logs/std_log.txt": 5})  # type: ignore[arg-type]
    resumed.scan()
    assert dict((h["f"], d) for h, d in resumed.out.sent)["user_logs/std_log.txt"] == b"more\n"  # type: ignore[attr-defined]


def _launch(run: Path, code: str, lease: float) -> dict[str, Any]:
    (run / "wd").mkdir(parents=True)
    request = {"argv": [sys.executable, "-c", code], "lease": lease, "grace": 1}
    return job.launch(str(run), request)


def _exit(run: Path) -> dict[str, Any]:
    wait_until(lambda: (run / "exit.json").exists(), timeout=15, what="the job's exit")
    result: dict[str, Any] = json.loads((run / "exit.json").read_text())
    return result


def test_watchdog_records_the_exit_code_and_outputs(awkward_dir: Path) -> None:
    run = awkward_dir / "run ok"
    status = _launch(run, "import os; open('outputs/x', 'w').write('1'); print('hi')", 30)
    assert status["pid"] > 0
    assert _exit(run) == {"code": 0, "reason": "exit", "outputs": True}
    assert (run / "user_logs" / "std_log.txt").read_text() == "hi\n"


def test_watchdog_stops_the_job_when_the_lease_expires(awkward_dir: Path) -> None:
    run = awkward_dir / "run lease"
    _launch(run, "import time; time.sleep(60)", 0.5)
    result = _exit(run)
    assert result["reason"] == "lease" and result["code"] < 0
    assert "the remote watchdog stops the job" in (run / "user_logs" / "std_log.txt").read_text()


def test_cancel_kills_the_whole_group(awkward_dir: Path) -> None:
    run = awkward_dir / "run cancel"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "open('child.pid', 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    _launch(run, code, 30)
    wait_until(lambda: (run / "wd" / "child.pid").exists(), what="the child")
    assert job.kill(str(run), grace=0.5)
    assert _exit(run)["reason"] == "cancel"
    child = int((run / "wd" / "child.pid").read_text())
    wait_until(lambda: not os.path.exists(f"/proc/{child}"), timeout=5, what="the child to die")


def test_a_command_that_cannot_start_is_reported(awkward_dir: Path) -> None:
    run = awkward_dir / "run missing"
    (run / "wd").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="cannot start"):
        job.launch(str(run), {"argv": ["/no/such/python"], "lease": 5, "grace": 1})


def test_the_agent_names_its_recipes_as_the_hash_does() -> None:
    """The agent cannot import ferry, so it repeats the names; they must not drift apart."""
    assert envs.RECIPE_UV == spechash.AGENT_UV_RECIPE
    assert envs.RECIPE_VENV == spechash.AGENT_VENV_RECIPE
    assert envs.RECIPE_ANY == spechash.AGENT_RECIPE
    assert spechash.LOCAL_RECIPE not in (envs.RECIPE_UV, envs.RECIPE_VENV, envs.RECIPE_ANY)


def _build(root: Path, recipe: str, uv: str) -> tuple[dict[str, Any], list[str]]:
    said: list[str] = []
    request = {"hash": hashlib.sha256(recipe.encode()).hexdigest()[:32], "interpreter":
               sys.executable, "packages": [], "uv": uv, "recipe": recipe}  # fmt: skip
    return envs.build_env(str(root), request, said.append), said


def test_the_agent_builds_with_the_recipe_the_hash_names(awkward_dir: Path) -> None:
    uv = str(Path(sys.executable).with_name("uv"))
    assert os.access(uv, os.X_OK), "uv is installed in ferry's virtual environment"
    facts, said = _build(awkward_dir, envs.RECIPE_VENV, uv)  # uv is here, yet not used
    assert any("-m venv" in line for line in said) and not any(uv in line for line in said)
    assert os.access(facts["python"], os.X_OK)
    facts, said = _build(awkward_dir, envs.RECIPE_UV, uv)
    assert said[0] == f"building with {uv}" and os.access(facts["python"], os.X_OK)


def test_the_agent_refuses_a_uv_build_without_uv(awkward_dir: Path) -> None:
    """Falling back to venv would build something else than the hash stands for."""
    with pytest.raises(RuntimeError, match="is not on this host"):
        _build(awkward_dir, envs.RECIPE_UV, str(awkward_dir / "no uv"))
    with pytest.raises(RuntimeError, match="does not know the build recipe"):
        _build(awkward_dir, "agent-uv-99", "")
    assert [p.name for p in (awkward_dir / "envs").iterdir() if not p.name.startswith(".")] == []
