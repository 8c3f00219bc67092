"""Prune removes unused environments and leftovers, never one a live run needs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from envbuild_helpers import pip_env

from ferry.envbuild import EnvCache, resolve
from ferry.envbuild.prune import prune, prune_environments
from ferry.environment import Environment
from ferry.status import RunStatus
from ferry.tracking import RunRecord


def add_run(ws: Any, run_id: str, status: RunStatus, env: Environment) -> None:
    ws.store.create_run(
        RunRecord(
            id=run_id, experiment="exp", status=status, definition={"environment": env.to_dict()}
        )
    )


def age(cache: EnvCache, digest: str, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(cache.folder(digest) / ".last-use", (then, then))


def test_prune_keeps_what_live_runs_need_and_recent_ones(workspace: Any) -> None:
    cache = EnvCache(workspace.envs_dir)
    running, queued, finished, recent = (
        pip_env("running", "six==1.17.0"),
        pip_env("queued", "idna==3.20"),
        pip_env("finished", "six==1.17.0", "idna==3.20"),
        pip_env("recent", "packaging==26.3"),
    )
    for env in (running, queued, finished, recent):
        resolve(env.to_spec(), workspace.envs_dir)
    for env in (running, queued, finished):
        age(cache, env.spec_hash() or "", 90)
    add_run(workspace, "exp_1_aaaaaaaa", RunStatus.RUNNING, running)
    add_run(workspace, "exp_2_bbbbbbbb", RunStatus.QUEUED, queued)
    add_run(workspace, "exp_3_cccccccc", RunStatus.COMPLETED, finished)
    leftover = workspace.envs_dir / f".tmp-{'0' * 32}-1-deadbeef"
    (leftover / "bin").mkdir(parents=True)

    dry = prune_environments(workspace, older_than_days=30, dry_run=True)
    assert [b.spec_hash for b in dry.removed] == [finished.spec_hash()]
    assert dry.freed_bytes > 0
    assert cache.lookup(finished.spec_hash() or "") is not None, "a dry run removes nothing"
    assert leftover.exists()

    report = prune_environments(workspace, older_than_days=30)
    assert [b.spec_hash for b in report.removed] == [finished.spec_hash()]
    assert {b.spec_hash for b in report.in_use} == {running.spec_hash(), queued.spec_hash()}
    assert [b.spec_hash for b in report.recent] == [recent.spec_hash()]
    assert report.leftovers == [leftover] and not leftover.exists()
    assert cache.lookup(finished.spec_hash() or "") is None
    for env in (running, queued, recent):
        assert not resolve(env.to_spec(), workspace.envs_dir).built

    everything = prune_environments(workspace, older_than_days=0)
    assert {b.spec_hash for b in everything.removed} == {recent.spec_hash()}
    assert {b.spec_hash for b in everything.in_use} == {running.spec_hash(), queued.spec_hash()}


HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1]); lock.acquire(); print("held", flush=True); time.sleep(60)
"""


def test_prune_skips_an_environment_whose_lock_another_process_holds(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    env = pip_env("busy", "six==1.17.0")
    digest = resolve(env.to_spec(), root).spec_hash or ""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root / f"{digest}.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        report = prune(root, set(), older_than_days=0)
        assert [b.spec_hash for b in report.busy] == [digest]
        assert EnvCache(root).lookup(digest) is not None
    finally:
        holder.kill()
        holder.wait()
    assert [b.spec_hash for b in prune(root, set(), older_than_days=0).removed] == [digest]
