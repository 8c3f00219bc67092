"""The SQLite file: private when ferry creates it; damaged, foreign or truncated ones refused
with a message naming the file and the fix — never a traceback (probe R1 and 3.14)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from store_helpers import make_run

from ferry.errors import StoreError
from ferry.status import RunStatus
from ferry.tracking import MetricRecord, RunQuery, RunRecord, RunStore, open_store

FIX = "move it away to start a new history, or restore it from a backup"


@pytest.fixture
def workspace_db() -> Iterator[Path]:
    """``$FERRY_HOME/ferry.db`` holding 30 runs with metrics, and their run folders."""
    home = Path(os.environ["FERRY_HOME"])
    home.mkdir(parents=True)
    db = home / "ferry.db"
    store = open_store(f"sqlite:///{db}")
    for i in range(30):
        run_id = make_run(store, f"exp_{i}_abcdef12", tags={"k": "v" * 100})
        store.log_metrics(
            [MetricRecord(run_id, "m", "scalar", float(j), ts=0.0) for j in range(500)]
        )
        (home / "runs" / run_id).mkdir(parents=True)
    store.close()  # the last connection checkpoints the WAL into the file
    assert not Path(f"{db}-wal").exists()
    yield db


def _truncate_to_half(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _text_file(db: Path) -> None:
    db.write_text("these are my notes, not a database\n")


def _garble_header(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(b"\x00garbled header!" + data[16:])


def _garble_page_one(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xff" * 3996 + data[4096:])  # the schema's b-tree page


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate_to_half,
    "text": _text_file,
    "garbled-header": _garble_header,
    "garbled-page-1": _garble_page_one,
}

OPERATIONS: dict[str, Callable[[RunStore], object]] = {
    "list": lambda s: s.list_runs(RunQuery()),
    "show": lambda s: s.get_run("exp_3_abcdef12"),
    "metrics": lambda s: [s.get_metrics([f"exp_{i}_abcdef12"]) for i in range(30)],
    "create": lambda s: s.create_run(RunRecord(id="exp_99_abcdef12", experiment="exp")),
    "status": lambda s: s.set_status("exp_3_abcdef12", RunStatus.FAILED),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=str)
@pytest.mark.parametrize("operation", OPERATIONS, ids=str)
def test_a_damaged_file_is_a_store_error_naming_it_and_the_fix(
    workspace_db: Path, damage: str, operation: str
) -> None:
    DAMAGE[damage](workspace_db)
    store = open_store(f"sqlite:///{workspace_db}")
    with pytest.raises(StoreError) as caught:
        OPERATIONS[operation](store)
    message = str(caught.value)
    assert message.startswith(f"{workspace_db} is not a ferry database (")
    assert any(r in message for r in ("file is not a database", "malformed")), message
    assert message.endswith(FIX)
    store.close()


@pytest.mark.parametrize("damage", DAMAGE, ids=str)
def test_the_cli_says_what_is_wrong_without_a_traceback(
    workspace_db: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferry.cli.main import main

    DAMAGE[damage](workspace_db)
    for argv in (["runs", "list"], ["runs", "show", "exp_3_abcdef12"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        err = capsys.readouterr().err
        assert exited.value.code == 2, err
        assert f"ferry: error: {workspace_db} is not a ferry database" in err
        assert "Traceback" not in err


def test_a_zero_length_file_beside_run_folders_is_refused(workspace_db: Path) -> None:
    workspace_db.write_bytes(b"")
    store = open_store(f"sqlite:///{workspace_db}")
    for operation in OPERATIONS.values():
        with pytest.raises(
            StoreError, match=r"is empty \(zero bytes\), but .* holds 30 run folders"
        ):
            operation(store)
    assert workspace_db.stat().st_size == 0  # not silently turned into a new, empty history


def test_a_zero_length_file_without_runs_is_a_new_history(awkward_dir: Path) -> None:
    db = awkward_dir / "ferry.db"
    db.write_bytes(b"")
    (awkward_dir / "runs").mkdir()
    store = open_store(f"sqlite:///{db}")
    run_id = make_run(store)
    assert [r.id for r in store.list_runs(RunQuery())] == [run_id]
    store.close()


def test_a_missing_folder_is_a_store_error(awkward_dir: Path) -> None:
    store = open_store(f"sqlite:///{awkward_dir / 'nowhere' / 'ferry.db'}")
    with pytest.raises(StoreError, match=r"cannot create the run history .*nowhere.*exists"):
        store.list_experiments()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000], ids=oct)
def test_the_database_ferry_creates_is_private(awkward_dir: Path, umask: int) -> None:
    db = awkward_dir / "ferry.db"
    old = os.umask(umask)
    try:
        store = open_store(f"sqlite:///{db}")
        make_run(store)  # a write: the -wal and -shm files exist while the store is open
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
        store.close()
    finally:
        os.umask(old)
    assert modes == {f.name: "0o600" for f in files}


def test_an_existing_file_keeps_its_mode(awkward_dir: Path) -> None:
    """A database the user shares on purpose (0640) is not changed behind their back."""
    db = awkward_dir / "ferry.db"
    store = open_store(f"sqlite:///{db}")
    make_run(store)
    store.close()
    db.chmod(0o640)
    store = open_store(f"sqlite:///{db}")
    assert len(store.list_runs(RunQuery())) == 1
    store.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o640
