"""``FERRY_DATABASE_URL`` lets a local workspace keep its run history in PostgreSQL directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.testing.postgres import PostgresCluster
from ferry.tracking import open_store


def test_a_local_workspace_records_its_runs_in_postgresql(
    pg: PostgresCluster, awkward_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg.create_database()
    monkeypatch.setenv("FERRY_DATABASE_URL", url)
    ws = Workspace.create(awkward_dir / "ws")
    source = awkward_dir / "src"
    source.mkdir()
    (source / "train.py").write_text(
        "import os\nfrom ferry import Run\nrun = Run.get_context()\nrun.log('acc', 0.5)\n"
        "print('sees the database url:', 'FERRY_DATABASE_URL' in os.environ)\n",
        encoding="utf-8",
    )
    run = Experiment(ws, "on-pg").submit(ScriptRunConfig(str(source), "train.py"))
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Completed"
    assert not (ws.path / "ferry.db").exists()  # nothing went to the embedded SQLite file
    store = open_store(url)
    try:
        assert store.get_run(run.id).status == "Completed"
        assert [(m.name, m.value) for m in store.get_metrics([run.id])] == [("acc", 0.5)]
    finally:
        store.close()
    log = (ws.runs_dir / run.id / "user_logs" / "std_log.txt").read_text(encoding="utf-8")
    assert "sees the database url: False" in log  # the job never sees the database's address
