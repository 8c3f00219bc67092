"""PostgreSQL connections in the store's pool: dropped by the server, replaced before use.

The store pings a pooled connection only when it has been idle a while (not before every use,
a round trip per request); a connection the server dropped meanwhile is replaced, so the read
that follows succeeds. Reads run in autocommit (no ROLLBACK round trip on check-in) and still
see every committed write."""

from __future__ import annotations

import psycopg
import pytest

from ferry.testing.postgres import PostgresCluster
from ferry.tracking import RunRecord
from ferry.tracking import database as db
from ferry.tracking.sql import SqlRunStore


def _drop_every_connection(cluster: PostgresCluster, url: str) -> int:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.url().replace("+psycopg", ""), autocommit=True) as admin:
        found = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    return int(found[0]) if found else 0


def test_a_connection_the_server_dropped_is_replaced_after_idling(
    pg_cluster: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = pg_cluster.create_database()
    store = SqlRunStore(url)
    try:
        store.create_run(RunRecord(id="pool_1_aaaaaaaa", experiment="pool"))
        assert store.get_run("pool_1_aaaaaaaa").experiment == "pool"
        assert _drop_every_connection(pg_cluster, url) >= 1
        monkeypatch.setattr(db, "_PING_AFTER_IDLE_SECONDS", 0.0)  # every connection "idled"
        assert store.get_run("pool_1_aaaaaaaa").experiment == "pool"
        store.create_run(RunRecord(id="pool_2_bbbbbbbb", experiment="pool"))
    finally:
        store.close()


def test_reads_in_autocommit_see_each_commit_and_leave_no_transaction_open(
    pg_cluster: PostgresCluster,
) -> None:
    url = pg_cluster.create_database()
    store = SqlRunStore(url)
    try:
        for n in range(1, 5):  # a write between reads: each read sees it
            store.create_run(RunRecord(id=f"busy_{n}_aaaaaaaa", experiment="busy"))
            assert store.get_run(f"busy_{n}_aaaaaaaa").id == f"busy_{n}_aaaaaaaa"
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(pg_cluster.url().replace("+psycopg", ""), autocommit=True) as admin:
            states = admin.execute(
                "SELECT state FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchall()
        assert states and {state for (state,) in states} == {"idle"}
    finally:
        store.close()
