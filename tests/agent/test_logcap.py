"""The capped run log keeps its head and tail, stays bounded, and followers never lose their place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ferry.agent.logcap import CappedLog, LogFollower, max_bytes_from_env


def _lines(start: int, count: int) -> bytes:
    return b"".join(f"line {i:08d}\n".encode() for i in range(start, start + count))


def test_an_uncapped_log_is_a_plain_append(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    log = CappedLog(str(path), 0)
    for i in range(100):
        log.write(_lines(i * 100, 100))
    log.close()
    assert path.read_bytes() == _lines(0, 10_000)


def test_the_cap_keeps_the_first_and_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    cap = 20_000
    log = CappedLog(str(path), cap)
    written = 0
    for i in range(2000):  # 2000 × 10 lines × 14 bytes = 280 kB, 14× the cap
        log.write(_lines(i * 10, 10))
        written += 140
        assert path.stat().st_size <= cap + cap // 2 + 200
    log.close()
    text = path.read_bytes()
    assert text.startswith(_lines(0, 50))
    assert text.endswith(_lines(19_990, 10))
    assert b"bytes of output elided here" in text
    assert text.count(b"elided") == 1
    # every kept line is whole
    body = [line for line in text.split(b"\n") if line and b"ferry" not in line]
    assert all(len(line) == 13 for line in body)


def test_writes_cost_at_most_three_times_the_output(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    log = CappedLog(str(path), 100_000)
    chunk = b"x" * 999 + b"\n"
    before = _written_bytes()
    for _ in range(2000):  # 2 MB through a 100 kB cap
        log.write(chunk)
    log.close()
    after = _written_bytes()
    if before is not None and after is not None:
        assert after - before <= 3 * 2_000_000 + 500_000


def _written_bytes() -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/io", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@pytest.mark.parametrize("every", [1, 7, 100])
def test_a_follower_reads_every_byte_once_across_compactions(tmp_path: Path, every: int) -> None:
    path = tmp_path / "log.txt"
    log = CappedLog(str(path), 10_000)
    follower = LogFollower(str(path))
    seen = b""
    for i in range(300):
        log.write(_lines(i * 5, 5))
        if i % every == 0:
            seen += follower.read()
    seen += follower.read()
    log.close()
    # no line twice, in order, to the last; a follower that kept up saw every line, one that
    # lagged behind a compaction saw the marker where its lines were elided
    numbers = [int(line[5:]) for line in seen.split(b"\n") if line.startswith(b"line ")]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))
    assert numbers[-1] == 1499
    if every < 10:
        assert numbers == list(range(1500))
    else:
        assert b"elided" in seen and len(numbers) < 1500


def test_a_late_follower_sees_head_marker_tail(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    log = CappedLog(str(path), 10_000)
    for i in range(300):
        log.write(_lines(i * 5, 5))
    log.close()
    assert LogFollower(str(path)).read() == path.read_bytes()


def test_a_log_that_already_had_lines_keeps_them_in_its_head(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"ferry: preparing\n")
    log = CappedLog(str(path), 5000)
    for i in range(500):
        log.write(_lines(i, 1))
    log.close()
    assert path.read_bytes().startswith(b"ferry: preparing\nline 00000000\n")


@pytest.mark.parametrize(
    ("raw", "expected"), [("", 200 << 20), ("0", 0), ("12", 12), ("x", 200 << 20)]
)
def test_the_cap_comes_from_the_environment(raw: str, expected: int) -> None:
    assert max_bytes_from_env({"FERRY_LOG_MAX_BYTES": raw}) == expected
