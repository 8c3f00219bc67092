"""Bad input gets a clear message or a 4xx with the reason, and nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from server_helpers import ferry_cli, free_port, start_server, stop

from ferry.tracking import RunRecord, open_store
from ferry.tracking.http import (
    HttpRunStore,
    ServerConnection,
    ServerIncompatible,
    ServerUnavailable,
)


def test_a_server_that_is_down_is_named_by_the_cli(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / ".ferry").mkdir()
    (tmp_path / ".ferry" / "config.json").write_text(json.dumps({"server": url}))
    env = {"FERRY_TOKEN": "ferry_0123456789ab_" + "z" * 43, "FERRY_HOME": str(tmp_path / "h")}
    import os
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", "runs", "list"],
        cwd=tmp_path,
        env={**os.environ, **env, "FERRY_NO_DAEMON": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"cannot reach the ferry server at {url}" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(ServerUnavailable, match=url):
        HttpRunStore(ServerConnection(url, "t")).list_experiments()


def test_a_client_of_another_api_version_is_refused_with_the_reason(live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    answer = live.get("/api/v1/info", headers={"Ferry-Api-Version": "99"})
    assert answer.status_code == 400
    assert "speaks ferry API '99', the server API 1" in answer.json()["error"]["message"]
    import ferry.tracking.http as http

    monkeypatch.setattr(http, "API_VERSION", 2)
    with pytest.raises(ServerIncompatible, match="server API 1"):
        HttpRunStore(ServerConnection(live.url, live.user_token)).list_experiments()


def test_malformed_bodies_are_4xx_and_write_nothing(live) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {live.user_token}", "Content-Type": "application/json"}
    raw = httpx.post(live.url + "/api/v1/runs", content=b"{not json", headers=headers)
    assert raw.status_code == 422 and raw.json()["error"]["code"] == "InvalidRequest"
    shape = live.post("/api/v1/runs", {"record": {"id": 5, "experiment": "x"}})
    assert shape.status_code == 400 and "run id is not valid" in shape.json()["error"]["message"]
    store = HttpRunStore(ServerConnection(live.url, live.user_token))
    store.create_run(RunRecord(id="bad_1_aaaaaaaa", experiment="bad"))
    ops = [
        {"op": "set_tags", "run_id": "bad_1_aaaaaaaa", "tags": {"kept": "no"}},
        {"op": "series", "run_id": "bad_1_aaaaaaaa", "name": "m", "values": [1], "ts": "x"},
    ]
    half = live.post("/api/v1/apply", {"ops": ops})
    assert half.status_code == 400 and "metric series" in half.json()["error"]["message"]
    assert "kept" not in store.get_run("bad_1_aaaaaaaa").tags  # nothing half-written
    mlflow = httpx.post(
        live.url + "/api/2.0/mlflow/runs/log-batch", content=b"[1, 2", headers=headers
    )
    assert mlflow.status_code == 400 and mlflow.json()["error_code"] == "MALFORMED_REQUEST"


def test_a_body_too_large_is_413_and_a_second_process_shares_the_database(
    live,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    proc, url, _log = start_server(
        live.database_url,
        tmp_path / "second",
        supervisors=0,
        extra=("--max-body", "4096"),
        env=live.env,
    )
    try:
        headers = {"Authorization": f"Bearer {live.user_token}"}
        big = {"series": [{"run_id": "r", "name": "m", "values": [1.0] * 5000, "ts": [0.0] * 5000}]}
        answer = httpx.post(url + "/api/v1/metrics", json=big, headers=headers)
        assert answer.status_code == 413 and "4096 bytes" in answer.json()["error"]["message"]
        chunked = httpx.post(
            url + "/api/v1/metrics",
            content=iter([b"x" * 3000] * 3),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        # the same history through either process
        HttpRunStore(ServerConnection(live.url, live.user_token)).ensure_experiment("shared-exp")
        assert (
            "shared-exp" in HttpRunStore(ServerConnection(url, live.user_token)).list_experiments()
        )
    finally:
        stop(proc)


def test_an_unreachable_database_is_named_at_start_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://ferry:pa55word@127.0.0.1:{free_port()}/ferry"
    proc = ferry_cli(
        "server",
        "--database-url",
        url,
        "--blob-store",
        str(tmp_path / "b"),
        "--data-dir",
        str(tmp_path / "d"),
        check=False,
    )
    assert proc.returncode == 2
    assert "cannot open the run history at postgresql+psycopg://ferry:***@127.0.0.1" in proc.stderr
    assert "pa55word" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_database_newer_than_the_code_is_refused_at_start(pg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = pg.create_database()
    open_store(url).list_experiments()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    engine.dispose()
    proc, _url, log = start_server(url, tmp_path, wait=False)
    assert proc.wait(timeout=60) == 2
    assert "written by a newer ferry (schema revision 0999); upgrade ferry" in log.read_text()
    stop(proc)
