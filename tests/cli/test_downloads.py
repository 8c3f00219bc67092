"""Downloads stay where they are sent (probe S3, rows 4.9 and 4.10), through the API and the CLI.

A job's symbolic links are never followed, stored names and paths never lead outside the run's
folders or the destination, and a link already in the destination is never written through.
"""

from __future__ import annotations

import os
import sqlite3
import textwrap
from pathlib import Path

import pytest

from ferry import Experiment, Run, ScriptRunConfig, Workspace
from ferry.errors import ConfigError

SECRET = "the downloading machine's secret\n"


def _link_run(ws: Workspace, folder: Path, secret: Path) -> Run:
    """A run whose job left links in ./outputs: to /etc/hostname (as in the probe), to a secret
    file and to a folder outside, next to one ordinary output."""
    (secret.parent / "secret dir").mkdir(exist_ok=True)
    (secret.parent / "secret dir" / "inner.txt").write_text(SECRET)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.py").write_text(
        textwrap.dedent(
            f"""
            import os
            os.makedirs("outputs", exist_ok=True)
            os.symlink("/etc/hostname", "outputs/h")
            os.symlink({str(secret)!r}, "outputs/secret.txt")
            os.symlink({str(secret.parent / "secret dir")!r}, "outputs/d")
            open("outputs/model.txt", "w").write("weights")
            """
        )
    )
    run = Experiment(ws, "links").submit(ScriptRunConfig(str(folder), "link.py"))
    assert run.wait_for_completion()["status"] == "Completed"
    # Whether the supervisor keeps the job's links (as links) and indexes them is its business;
    # a store written by an older ferry, or a shared one, has them: make sure they are there.
    outputs = ws.path / "runs" / run.id / "artifacts" / "outputs"
    links = {
        "h": "/etc/hostname",
        "secret.txt": str(secret),
        "d": str(secret.parent / "secret dir"),
    }
    missing = []
    for name, target in links.items():
        if not os.path.lexists(outputs / name):
            (outputs / name).symlink_to(target)
        if f"outputs/{name}" not in run.get_file_names():
            missing.append((f"outputs/{name}", f"runs/{run.id}/artifacts/outputs/{name}"))
    _tamper(ws, run.id, missing)
    assert {f"outputs/{n}" for n in (*links, "model.txt")} <= set(run.get_file_names())
    return run


def _no_secret_below(folder: Path) -> None:
    for path in folder.rglob("*"):
        assert not path.is_symlink(), path
        if path.is_file():
            assert path.read_text(errors="replace") != SECRET, path
            if Path("/etc/hostname").exists():
                assert path.read_bytes() != Path("/etc/hostname").read_bytes(), path


def _tamper(ws: Workspace, run_id: str, rows: list[tuple[str, str]]) -> None:
    """Insert artifact rows behind ferry's back, as a tampered or shared store would hold."""
    db = sqlite3.connect(ws.path / "ferry.db")
    with db:
        db.executemany(
            "insert into artifacts (run_id, name, path, size) values (?, ?, ?, 1)",
            [(run_id, name, path) for name, path in rows],
        )
    db.close()


@pytest.fixture
def secret(awkward_dir: Path) -> Path:
    path = awkward_dir / "private" / "secret.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def test_download_files_never_follows_a_link_the_job_made(
    workspace: Workspace, awkward_dir: Path, secret: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = _link_run(workspace, awkward_dir / "src", secret)
    dest = awkward_dir / "dl"
    written = run.download_files(output_directory=dest)
    assert (dest / "outputs" / "model.txt").read_text() == "weights"
    assert str(dest / "outputs" / "model.txt") in written
    for name in ("h", "secret.txt", "d"):
        assert not os.path.lexists(dest / "outputs" / name)
    skipped = written.skipped  # type: ignore[attr-defined]
    assert sum("symbolic link made by the job" in m for m in skipped) == 3, skipped
    assert "outputs/h" in caplog.text and "not followed" in caplog.text
    _no_secret_below(dest)
    with pytest.raises(ConfigError, match="symbolic link made by the job"):
        run.download_file("outputs/secret.txt", awkward_dir / "one.txt")
    assert not os.path.lexists(awkward_dir / "one.txt")


def test_runs_download_never_follows_a_link_the_job_made(
    ferry, awkward_dir: Path, secret: Path
) -> None:  # type: ignore[no-untyped-def]
    ws = Workspace.create(awkward_dir / "cli ws")
    run = _link_run(ws, awkward_dir / "src", secret)
    dest = awkward_dir / "dl"
    res = ferry("runs", "download", run.id, "-o", str(dest))
    assert res.code == 1, res.err  # something was left out: say so in the exit code
    assert "Traceback" not in res.err
    assert res.err.count("symbolic link made by the job; not followed") == 3, res.err
    assert "outputs/h" in res.err
    assert (dest / "outputs" / "model.txt").read_text() == "weights"
    assert not os.path.lexists(dest / "outputs" / "h")
    _no_secret_below(dest)
    ws.store.close()


BAD_ROWS = [
    ("../../escaped.txt", "runs/{id}/user_logs/std_log.txt"),  # the probe's name
    ("..\\..\\escaped_bs.txt", "runs/{id}/user_logs/std_log.txt"),  # backslash trick
    ("{abs}/abs_escaped.txt", "runs/{id}/user_logs/std_log.txt"),  # absolute name
    ("outputs/hostname", "/etc/hostname"),  # the probe's path
    ("outputs/climb", "runs/{id}/artifacts/../../../../{secret}"),  # climbing path
    ("outputs/other", "runs/{other}/artifacts/outputs/model.txt"),  # another run's file
    ("outputs/ws", "ferry.db"),  # a workspace file outside the run
]


def _bad_rows(run: Run, other: Run, secret: Path, ws: Workspace) -> list[tuple[str, str]]:
    rel_secret = os.path.relpath(secret, ws.path)
    return [
        (name.format(abs=secret.parent), path.format(id=run.id, other=other.id, secret=rel_secret))
        for name, path in BAD_ROWS
    ]


def _two_runs(ws: Workspace, awkward_dir: Path) -> tuple[Run, Run]:
    src = awkward_dir / "plain"
    src.mkdir()
    (src / "t.py").write_text(
        "import os\nos.makedirs('outputs', exist_ok=True)\n"
        "open('outputs/model.txt', 'w').write('mine')\nprint('log line')\n"
    )
    runs = [Experiment(ws, "tamper").submit(ScriptRunConfig(str(src), "t.py")) for _ in range(2)]
    for run in runs:
        assert run.wait_for_completion()["status"] == "Completed"
    return runs[0], runs[1]


def test_download_refuses_tampered_names_and_paths(
    workspace: Workspace, awkward_dir: Path, secret: Path
) -> None:
    run, other = _two_runs(workspace, awkward_dir)
    _tamper(workspace, run.id, _bad_rows(run, other, secret, workspace))
    dest = awkward_dir / "dl2" / "inner"
    written = run.download_files(output_directory=dest)
    assert sorted(Path(p).relative_to(dest).as_posix() for p in written) == [
        "outputs/model.txt",
        "user_logs/std_log.txt",
    ]
    assert (dest / "outputs" / "model.txt").read_text() == "mine"
    assert len(written.skipped) == len(BAD_ROWS)  # type: ignore[attr-defined]
    for escaped in ("escaped.txt", "escaped_bs.txt", "abs_escaped.txt"):
        assert not list(awkward_dir.rglob(escaped))
    assert not (dest / "outputs" / "hostname").exists()
    assert not (dest / "outputs" / "other").exists()
    _no_secret_below(awkward_dir / "dl2")
    for name, _ in _bad_rows(run, other, secret, workspace):
        with pytest.raises(ConfigError, match="not downloaded"):
            run.download_file(name, awkward_dir / "single.txt")
    assert not (awkward_dir / "single.txt").exists()


def test_runs_download_refuses_tampered_names_and_paths(  # type: ignore[no-untyped-def]
    ferry, awkward_dir: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.create(awkward_dir / "cli ws")
    run, other = _two_runs(ws, awkward_dir)
    _tamper(ws, run.id, _bad_rows(run, other, secret, ws))
    work = awkward_dir / "a"
    work.mkdir()
    monkeypatch.chdir(work)  # the probe ran `ferry runs download R -o a/b`: escaped.txt landed
    res = ferry("runs", "download", run.id, "-o", "b")
    assert res.code == 1 and "Traceback" not in res.err
    assert res.err.count("ferry: warning:") == len(BAD_ROWS), res.err
    assert "'../../escaped.txt' skipped: " in res.err and "'/etc/hostname'" in res.err
    assert not list(awkward_dir.rglob("escaped*.txt"))
    assert (work / "b" / "outputs" / "model.txt").read_text() == "mine"
    _no_secret_below(work)
    ws.store.close()


def test_a_link_already_in_the_destination_is_not_written_through(
    workspace: Workspace, awkward_dir: Path
) -> None:
    run, _ = _two_runs(workspace, awkward_dir)
    elsewhere = awkward_dir / "elsewhere"
    elsewhere.mkdir()
    dest = awkward_dir / "dl3"
    dest.mkdir()
    (dest / "outputs").symlink_to(elsewhere)  # a folder link
    (dest / "user_logs").mkdir()
    (dest / "user_logs" / "std_log.txt").symlink_to(elsewhere / "victim.txt")  # a file link
    written = run.download_files(output_directory=dest)
    assert written == []
    assert list(elsewhere.iterdir()) == []
    messages = " ".join(written.skipped)  # type: ignore[attr-defined]
    assert "'outputs' in the destination is a symbolic link" in messages
    assert "'std_log.txt' in the destination is a symbolic link" in messages
    with pytest.raises(ConfigError, match="symbolic link; not written through"):
        run.download_file("outputs/model.txt", dest / "user_logs" / "std_log.txt")
    assert list(elsewhere.iterdir()) == []


def test_output_paths_are_honoured_one_per_file(workspace: Workspace, awkward_dir: Path) -> None:
    run, _ = _two_runs(workspace, awkward_dir)
    names = run.get_file_names()
    assert names == ["outputs/model.txt", "user_logs/std_log.txt"]
    targets = [str(awkward_dir / "p" / "m.bin"), str(awkward_dir / "q" / "log.txt")]
    assert run.download_files(output_paths=targets) == targets
    assert Path(targets[0]).read_text() == "mine"
    assert "log line" in Path(targets[1]).read_text()
    assert run.download_files(prefix="outputs/", output_paths=[targets[1]]) == [targets[1]]
    assert Path(targets[1]).read_text() == "mine"
    with pytest.raises(ConfigError, match=r"output_paths has 1 path\(s\) for 2 file\(s\)"):
        run.download_files(output_paths=[targets[0]])
    with pytest.raises(ConfigError, match="must be a list"):
        run.download_files(output_paths=targets[0])  # type: ignore[arg-type]


def test_prefix_without_append_prefix(workspace: Workspace, awkward_dir: Path) -> None:
    run, _ = _two_runs(workspace, awkward_dir)
    dest = awkward_dir / "flat"
    written = run.download_files(prefix="outputs/", output_directory=dest, append_prefix=False)
    assert written == [str(dest / "model.txt")]
    exact = run.download_files(
        prefix="outputs/model.txt", output_directory=dest / "x", append_prefix=False
    )
    assert exact == [str(dest / "x" / "model.txt")]
