"""A capped log streamed from an SSH host: compactions there never send a byte twice nor lose
one that is kept; a follower started again after a reconnection goes on where the client is; the
local copy is capped too. First the agent's follower and the client's sink alone, then a real
run over sshd that prints far more than the cap."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import sshd
from sshd import SshServer

from ferry.agent.logcap import CappedLog
from ferry.agent.serve import Follower
from ferry.compute import ComputeTarget
from ferry.experiment import Experiment
from ferry.script_run_config import ScriptRunConfig
from ferry.spec import RunPaths
from ferry.targets.ssh.sink import LocalSink

ssh_server = sshd.ssh_server  # the fixtures, by name
remote_root = sshd.remote_root

LOG = "user_logs/std_log.txt"
MARKER = re.compile(rb"\n?\[ferry: \d+ bytes of output elided here[^\]]*\]\n")


def _lines(start: int, count: int) -> bytes:
    return b"".join(f"line {i:08d}\n".encode() for i in range(start, start + count))


class Pipe:
    """The follower's frames, handed straight to a client's sink (the SSH channel, without SSH)."""

    def __init__(self, sink: LocalSink) -> None:
        self.sink = sink
        self.frames = 0

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        if header.get("t") == "data":
            self.frames += 1
            self.sink.write(header["f"], payload, bool(header["reset"]), header.get("pos"))


def _host_and_client(tmp_path: Path, local_cap: int = 0) -> tuple[CappedLog, LocalSink, Path]:
    host_run = tmp_path / "host run"
    (host_run / "user_logs").mkdir(parents=True)
    log = CappedLog(str(host_run / LOG), max_bytes=20_000)
    sink = LocalSink(RunPaths(tmp_path / "local run"), ("logs",), max_bytes=local_cap)
    return log, sink, host_run


def _numbers(text: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"line (\d{8})\n", text)]


def test_a_close_follower_loses_nothing_across_compactions(tmp_path: Path) -> None:
    log, sink, host_run = _host_and_client(tmp_path)
    follower = Follower(Pipe(sink), str(host_run), {}, [])  # type: ignore[arg-type]
    for i in range(300):  # 300 × 50 lines × 14 bytes = 210 kB through a 20 kB cap
        log.write(_lines(i * 50, 50))
        while follower.scan():
            pass
    local = (tmp_path / "local run" / LOG).read_bytes()
    assert local == _lines(0, 15_000)  # every byte once, in order
    assert (host_run / LOG).stat().st_size <= 30_000  # the host's copy stayed capped
    assert sink.received[LOG] == len(local)


def test_a_follower_that_falls_behind_gets_the_marker_never_a_duplicate(tmp_path: Path) -> None:
    log, sink, host_run = _host_and_client(tmp_path)
    follower = Follower(Pipe(sink), str(host_run), {}, [])  # type: ignore[arg-type]
    for i in range(40):
        log.write(_lines(i * 500, 500))  # 7 kB each; a scan every fifth write, past compactions
        if i % 5 == 4:
            while follower.scan():
                pass
    local = (tmp_path / "local run" / LOG).read_bytes()
    numbers = _numbers(local)
    assert numbers[0] == 0 and numbers[-1] == 19_999
    assert all(a < b for a, b in itertools.pairwise(numbers))  # no line twice
    pieces = MARKER.split(local)
    assert len(pieces) > 1  # some output was elided while the follower was behind…
    for piece in pieces:  # …and only where a marker says so
        got = _numbers(piece)
        assert got == list(range(got[0], got[0] + len(got))), "a gap without a marker"


def test_a_follower_started_again_goes_on_where_the_client_is(tmp_path: Path) -> None:
    log, sink, host_run = _host_and_client(tmp_path)
    first = Follower(Pipe(sink), str(host_run), {}, [])  # type: ignore[arg-type]
    log.write(_lines(0, 1000))  # 14 kB
    while first.scan():
        pass
    log.write(_lines(1000, 1000))  # compacted on the host while the connection is down
    log.write(_lines(2000, 200))
    resumed = Follower(Pipe(sink), str(host_run), dict(sink.received), [])  # type: ignore[arg-type]
    while resumed.scan():
        pass
    numbers = _numbers((tmp_path / "local run" / LOG).read_bytes())
    assert numbers[:1000] == list(range(1000))  # what came before the drop, once
    assert numbers[-1] == 2199 and all(a < b for a, b in itertools.pairwise(numbers))


def test_the_local_copy_is_capped_too(tmp_path: Path) -> None:
    log, sink, host_run = _host_and_client(tmp_path, local_cap=10_000)
    follower = Follower(Pipe(sink), str(host_run), {}, [])  # type: ignore[arg-type]
    for i in range(100):
        log.write(_lines(i * 100, 100))
        while follower.scan():
            pass
    assert sink.note("ferry: a line of ferry's own")
    sink.close()
    local = (tmp_path / "local run" / LOG).read_bytes()
    assert len(local) <= 15_000 + 200
    assert local.startswith(b"line 00000000\n")
    assert local.endswith(b"line 00009999\nferry: a line of ferry's own\n")
    assert not sink.note("after the end")


def test_a_run_that_prints_past_the_cap_arrives_capped_and_in_order(  # type: ignore[no-untyped-def]
    workspace, awkward_dir: Path, ssh_server: SshServer, remote_root: Path, monkeypatch
) -> None:
    monkeypatch.setenv("FERRY_LOG_MAX_BYTES", "50000")
    config = ssh_server.attach_config(work_dir=str(remote_root / "capped"))
    from ferry.compute import RemoteCompute

    ComputeTarget.attach(workspace, "vm", RemoteCompute.attach_configuration(**config))
    source = awkward_dir / "src"
    source.mkdir()
    (source / "job.py").write_text(
        "import sys, time\n"
        "for i in range(40000):\n"
        "    sys.stdout.write(f'line {i:08d}\\n')\n"
        "    if i % 2000 == 0:\n"
        "        sys.stdout.flush(); time.sleep(0.01)\n"
    )
    run = Experiment(workspace, "capped").submit(
        ScriptRunConfig(str(source), "job.py", compute_target="vm")
    )
    details = run.wait_for_completion()
    log = Path(details["logFiles"][LOG]).read_bytes()
    assert len(log) <= 75_000 + 1000  # 560 kB printed; the local copy stays under 1.5 × cap
    numbers = _numbers(log)
    assert numbers[-1] == 39_999 and all(a < b for a, b in itertools.pairwise(numbers))
    assert b"bytes of output elided here" in log
