"""Snapshots (issue 3): 5,000 files of 4 KiB plus 5 files of 50 MiB.

* cold snapshot (empty store, no stat cache) vs ``git add -A`` into a fresh repository;
* warm re-snapshot of the unchanged tree vs ``git status`` (goal: under 0.2 s);
* one file changed: the bytes newly stored must equal that file's size;
* materialising the snapshot (a run's working copy) vs ``cp -r`` of the source.

Both sides read the same tree from a warm page cache; each figure is the median of several runs.
Writes bench/results/snapshot.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median, scratch, write_result

from ferry.snapshot import LocalBlobStore, SnapshotResult, materialize, take_snapshot
from ferry.snapshot.statcache import RACY_NS

SMALL_FILES, SMALL_SIZE = 5_000, 4 * 1024
BIG_FILES, BIG_SIZE = 5, 50 * 1024 * 1024
COLD_RUNS, WARM_RUNS = 3, 7


def build_fixture(root: Path) -> None:
    for i in range(SMALL_FILES):
        folder = root / f"pkg{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"module_{i}.py").write_bytes(os.urandom(SMALL_SIZE // 2).hex().encode())
    data = root / "data"
    data.mkdir()
    for i in range(BIG_FILES):
        (data / f"shard_{i}.bin").write_bytes(os.urandom(BIG_SIZE))


def git(git_dir: Path, tree: Path, *args: str) -> None:
    subprocess.run(
        ["git", f"--git-dir={git_dir}", f"--work-tree={tree}", *args],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )


def fresh_git_add(work: Path, tree: Path, i: int, *config: str) -> float:
    git_dir = work / f"git-{i}-{len(config)}"
    shutil.rmtree(git_dir, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", str(git_dir)], check=True)
    t = time.perf_counter()
    git(git_dir, tree, *config, "add", "-A")
    return time.perf_counter() - t


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def main() -> None:
    work = scratch("snapshot")
    tree = work / "tree"
    print("building the fixture …", flush=True)
    build_fixture(tree)
    total = SMALL_FILES * SMALL_SIZE + BIG_FILES * BIG_SIZE

    git_cold = median([fresh_git_add(work, tree, i) for i in range(COLD_RUNS)])
    git_cold0 = median(
        [fresh_git_add(work, tree, i, "-c", "core.compression=0") for i in range(COLD_RUNS)]
    )

    cold: list[float] = []
    result: SnapshotResult | None = None
    for i in range(COLD_RUNS):
        store = LocalBlobStore(work / f"blobs-{i}")
        seconds, out = timed(partial(take_snapshot, tree, store, work / f"cache-{i}"))
        assert isinstance(out, SnapshotResult)
        cold.append(seconds)
        result = out
    assert result is not None and result.stats.files == SMALL_FILES + BIG_FILES
    ferry_cold = median(cold)

    # Warm: the last cold run's store and cache, tree unchanged.
    store = LocalBlobStore(work / f"blobs-{COLD_RUNS - 1}")
    cache = work / f"cache-{COLD_RUNS - 1}"
    settle = take_snapshot(tree, store, cache)  # re-reads files modified < 2 s before cold
    warm_runs = [timed(partial(take_snapshot, tree, store, cache)) for _ in range(WARM_RUNS)]
    ferry_warm = median([s for s, _ in warm_runs])
    warm_hashed = max(r.stats.hashed_files for _, r in warm_runs)  # type: ignore[attr-defined]

    git_dir = work / f"git-{COLD_RUNS - 1}-0"
    git(git_dir, tree, "status", "--porcelain")  # let git refresh its index once, too
    git_warm = median(
        [timed(partial(git, git_dir, tree, "status", "--porcelain"))[0] for _ in range(WARM_RUNS)]
    )

    # One file changed (same size, new content), then one region of a big file. Each change is
    # made longer ago than the stat cache's racy window, as any edit before a submit is.
    small = tree / "pkg07" / "module_7.py"
    small.write_bytes(os.urandom(SMALL_SIZE // 2).hex().encode())
    time.sleep(RACY_NS / 1e9 + 0.1)
    one_small = take_snapshot(tree, store, cache)
    big = tree / "data" / "shard_3.bin"
    with big.open("r+b") as handle:
        handle.seek(BIG_SIZE // 2)
        handle.write(b"one changed region")
    time.sleep(RACY_NS / 1e9 + 0.1)
    one_big = take_snapshot(tree, store, cache)

    # A run's working copy: materialise vs cp -r.
    mat = median(
        [timed(partial(materialize, one_big.manifest, store, work / f"m-{i}"))[0]
         for i in range(COLD_RUNS)]
    )  # fmt: skip
    cp = median(
        [timed(partial(subprocess.run, ["cp", "-r", str(tree), str(work / f"cp-{i}")], check=True))[0]
         for i in range(COLD_RUNS)]
    )  # fmt: skip

    rows = [
        ("cold snapshot (empty store)", ferry_cold, "`git add -A`, fresh repo", git_cold),
        ("cold snapshot (empty store)", ferry_cold, "`git add -A`, core.compression=0", git_cold0),
        ("warm re-snapshot, unchanged tree", ferry_warm, "`git status`", git_warm),
        ("materialise working copy", mat, "`cp -r`", cp),
    ]
    lines = [
        "## Snapshots (issue 3)",
        "",
        f"Fixture: {SMALL_FILES:,} files × 4 KiB + {BIG_FILES} files × 50 MiB "
        f"({total / 2**20:,.0f} MiB), warm page cache, median of {COLD_RUNS} (cold) / "
        f"{WARM_RUNS} (warm) runs. SHA-256, local store.",
        "",
        "| ferry | time | anchor | time | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, ours, anchor, theirs in rows:
        lines.append(f"| {name} | {ms(ours)} | {anchor} | {ms(theirs)} | {ours / theirs:.2f}× |")
    small_ok = one_small.stats.new_bytes == SMALL_SIZE and one_small.stats.new_files == 1
    big_ok = one_big.stats.new_bytes == BIG_SIZE and one_big.stats.new_files == 1
    lines += [
        "",
        f"- warm re-snapshot: {ms(ferry_warm)} (goal < 200 ms); files re-read: {warm_hashed} "
        f"(first re-snapshot after the cold one: {settle.stats.hashed_files}).",
        f"- one 4 KiB file changed: new_bytes = {one_small.stats.new_bytes:,} "
        f"(expected {SMALL_SIZE:,}: {'ok' if small_ok else 'MISMATCH'}), files read "
        f"{one_small.stats.hashed_files}, {ms(one_small.stats.seconds)}.",
        f"- one 50 MiB file changed: new_bytes = {one_big.stats.new_bytes:,} "
        f"(expected {BIG_SIZE:,}: {'ok' if big_ok else 'MISMATCH'}), files read "
        f"{one_big.stats.hashed_files}, {ms(one_big.stats.seconds)}.",
        "- materialise = verified copies (reflinks where the filesystem has them), never hard "
        "links into the store.",
    ]
    write_result("snapshot", "\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
