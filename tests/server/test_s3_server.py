"""``ferry server --blob-store s3://…`` end to end: a real server on PostgreSQL with its blobs
in moto's S3 on loopback; a remote client submits, the server's supervisor materializes the
snapshot from the bucket, a second server on the same database and bucket serves it; bad
bucket settings stop the server at start with the fix, and no secret reaches its log."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from s3_helpers import moto_s3, new_bucket, s3_env
from server_helpers import ferry_cli, free_port, start_server, stop

from ferry import Experiment, ScriptRunConfig
from ferry.snapshot.digest import hash_bytes
from ferry.testing.postgres import PostgresCluster
from ferry.tracking.accounts import ServerStore


@dataclass
class S3Team:
    """A server on PostgreSQL whose blob store is a bucket."""

    url: str
    database: str
    bucket: str
    token: str
    env: dict[str, str]
    folder: Path
    log: Path
    s3: Any


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    yield from moto_s3()


@pytest.fixture(scope="module")
def team(
    s3: Any, pg: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Team]:
    folder = tmp_path_factory.mktemp("s3 server")
    database = pg.create_database()
    store = ServerStore(database)
    store.add_user("ada")
    token = store.create_token("ada")
    store.close()
    bucket = new_bucket(s3)
    env = {**os.environ, **s3_env(s3), "FERRY_HOME": str(folder / "home")}
    for name in ("FERRY_DATABASE_URL", "FERRY_BLOB_STORE", "AWS_PROFILE"):
        env.pop(name, None)
    proc, url, log = start_server(
        database, folder, env=env, extra=("--blob-store", f"s3://{bucket}/team")
    )
    yield S3Team(url, database, bucket, token, env, folder, log, s3)
    stop(proc)


def _keys(team: S3Team) -> list[str]:
    pages = team.s3.client().get_paginator("list_objects_v2").paginate(Bucket=team.bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_a_remote_run_snapshots_into_the_bucket_runs_and_can_be_restored(
    team: S3Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ferry.workspace import Workspace

    monkeypatch.setenv("FERRY_HOME", str(tmp_path / "client home"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)  # the client never talks to the bucket
    src = tmp_path / "src dir ü"
    (src / "pkg").mkdir(parents=True)
    train = "from pkg.helper import VALUE\nprint('value is', VALUE)\n"
    (src / "train.py").write_text(train)
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "helper.py").write_text("VALUE = 42\n")
    ws = Workspace.connect(team.url, team.token)
    try:
        run = Experiment(ws, "s3").submit(ScriptRunConfig(str(src), "train.py"))
        out = io.StringIO()
        details = run.wait_for_completion(show_output=True, out=out, timeout_seconds=120)
        assert details["status"] == "Completed", out.getvalue() + team.log.read_text()
        assert "value is 42" in out.getvalue()  # the supervisor materialized it from the bucket
        keys = _keys(team)
        digest = hash_bytes(train.encode())
        assert f"team/{digest[:2]}/{digest[2:]}" in keys
        assert not any(k.startswith("team/tmp/") for k in keys)  # nothing half-written left
        assert not (team.folder / "blobs").exists()  # the folder given first was not used
        restored = Path(run.restore_snapshot(path=tmp_path / "restored"))
        assert (restored / "train.py").read_text() == train
        assert (restored / "pkg" / "helper.py").read_text() == "VALUE = 42\n"
    finally:
        ws.store.close()
    log = team.log.read_text(errors="replace")
    assert team.env["AWS_SECRET_ACCESS_KEY"] not in log and "Traceback" not in log
    stored = _database_text(team.database)
    assert "s3" in stored  # (the run's rows are there) ...
    assert team.env["AWS_SECRET_ACCESS_KEY"] not in stored  # ... the bucket's secrets are not
    assert team.env["AWS_ACCESS_KEY_ID"] not in stored


def _database_text(url: str) -> str:
    """Every row of every table, as text."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return "\n".join(
                repr(row)
                for table in tables
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))
            )
    finally:
        engine.dispose()


def test_a_second_server_on_the_same_database_and_bucket_serves_the_blobs(
    team: S3Team, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {team.token}"}
    data = b"stored through the first server\n" * 1000
    digest = hash_bytes(data)
    put = httpx.put(f"{team.url}/api/v1/blobs/{digest}", content=data, headers=headers)
    assert put.status_code == 201 and put.json() == {"new": True}
    proc, url, log = start_server(
        team.database,
        tmp_path / "second",
        supervisors=0,
        env=team.env,
        extra=("--blob-store", f"s3://{team.bucket}/team"),
    )
    try:
        asked = httpx.post(
            f"{url}/api/v1/blobs/lacking",
            json={"sizes": {digest: len(data), hash_bytes(b"absent"): 6}},
            headers=headers,
        )
        assert asked.json() == {"lacking": [hash_bytes(b"absent")]}
        got = httpx.get(f"{url}/api/v1/blobs/{digest}", headers=headers)
        assert got.status_code == 200 and got.content == data
        again = httpx.put(f"{url}/api/v1/blobs/{digest}", content=data, headers=headers)
        assert again.json() == {"new": False}
        wrong = httpx.put(f"{url}/api/v1/blobs/{hash_bytes(b'x')}", content=b"y", headers=headers)
        assert wrong.status_code == 422
        assert f"team/{hash_bytes(b'x')[:2]}/{hash_bytes(b'x')[2:]}" not in _keys(team)
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text(errors="replace")


def test_a_damaged_blob_in_the_bucket_is_set_aside_and_a_damaged_cached_copy_refetched(
    team: S3Team,
) -> None:
    headers = {"Authorization": f"Bearer {team.token}"}
    client = team.s3.client()
    for label in ("bucket", "cache"):
        data = f"intact content for the {label} case\n".encode()
        digest = hash_bytes(data)
        put = httpx.put(f"{team.url}/api/v1/blobs/{digest}", content=data, headers=headers)
        assert put.status_code == 201
        key = f"team/{digest[:2]}/{digest[2:]}"
        if label == "bucket":  # same size: only a read can tell
            client.put_object(Bucket=team.bucket, Key=key, Body=data.upper())
            got = httpx.get(f"{team.url}/api/v1/blobs/{digest}", headers=headers)
            assert got.status_code == 409, got.text
            assert "set aside" in got.text and f"team/corrupt/{digest}." in got.text
            assert key not in _keys(team)  # the next submit stores the intact content
            assert any(k.startswith(f"team/corrupt/{digest}.") for k in _keys(team))
        else:
            first = httpx.get(f"{team.url}/api/v1/blobs/{digest}", headers=headers)
            assert first.content == data
            cached = team.folder / "data" / "blobs" / digest[:2] / digest[2:]
            cached.chmod(0o600)
            cached.write_bytes(data.upper())
            got = httpx.get(f"{team.url}/api/v1/blobs/{digest}", headers=headers)
            assert got.status_code == 200 and got.content == data  # fetched again
            assert key in _keys(team)


# bad settings at start ---------------------------------------------------------------------
def _start(team: S3Team, tmp_path: Path, blob_store: str, **env: str | None) -> Any:
    full = dict(team.env)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    return ferry_cli(
        "server",
        "--database-url",
        team.database,
        "--blob-store",
        blob_store,
        "--data-dir",
        str(tmp_path / "data"),
        "--port",
        str(free_port()),
        env=full,
        check=False,
        timeout=120,
    )


def test_a_missing_bucket_stops_the_server_naming_the_fix(team: S3Team, tmp_path: Path) -> None:
    proc = _start(team, tmp_path, "s3://no-such-ferry-bucket/blobs")
    assert proc.returncode == 2, proc.stderr
    assert "the bucket 'no-such-ferry-bucket' does not exist" in proc.stderr
    assert "aws s3 mb s3://no-such-ferry-bucket" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_credentials_stop_the_server_naming_the_variables(
    team: S3Team, tmp_path: Path
) -> None:
    proc = _start(
        team,
        tmp_path,
        f"s3://{team.bucket}/team",
        AWS_ACCESS_KEY_ID=None,
        AWS_SECRET_ACCESS_KEY=None,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no credentials found" in proc.stderr and "AWS_ACCESS_KEY_ID" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_refused_credentials_stop_the_server_without_the_secret(
    team: S3Team, tmp_path: Path
) -> None:
    secret = "not-the-right-secret-0123456789"
    proc = _start(team, tmp_path, f"s3://{team.bucket}/team", AWS_SECRET_ACCESS_KEY=secret)
    assert proc.returncode == 2, proc.stderr
    assert "refused the credentials" in proc.stderr
    assert secret not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_an_unreachable_endpoint_stops_the_server_naming_it(team: S3Team, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    proc = _start(team, tmp_path, f"s3://{team.bucket}/team", AWS_ENDPOINT_URL=endpoint)
    assert proc.returncode == 2, proc.stderr
    assert endpoint in proc.stderr and "AWS_ENDPOINT_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_url_with_credentials_in_it_is_refused(team: S3Team, tmp_path: Path) -> None:
    proc = _start(team, tmp_path, f"s3://AKIAEXAMPLE:hunter2hunter2@{team.bucket}/team")
    assert proc.returncode == 2, proc.stderr
    assert "must not carry credentials" in proc.stderr
    assert "hunter2hunter2" not in proc.stderr and "Traceback" not in proc.stderr
