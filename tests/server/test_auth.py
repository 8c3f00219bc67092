"""Every request is authenticated; scopes are enforced; secrets never leak."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from server_helpers import ferry_cli

from ferry.tracking import RunRecord
from ferry.tracking.http import HttpRunStore, ServerAuthError, ServerConnection


def test_no_token_or_a_wrong_one_is_401_with_the_reason(live) -> None:  # type: ignore[no-untyped-def]
    bare = httpx.get(live.url + "/api/v1/experiments")
    assert bare.status_code == 401 and "Bearer" in bare.json()["error"]["message"]
    assert bare.headers["www-authenticate"] == "Bearer"
    wrong = live.get("/api/v1/experiments", token="ferry_0123456789ab_" + "x" * 43)
    assert wrong.status_code == 401 and "not known" in wrong.json()["error"]["message"]
    garbage = live.get("/api/v1/experiments", token="hunter2")
    assert garbage.status_code == 401 and "hunter2" not in garbage.text
    for path in ("/api/v1/openapi.json", "/api/2.0/mlflow/experiments/search"):
        assert httpx.get(live.url + path).status_code in (401, 405)


def test_a_revoked_and_an_expired_token_are_refused(live) -> None:  # type: ignore[no-untyped-def]
    out = ferry_cli("server", "token", "create", "ada", "--json", env=live.env).stdout
    token = json.loads(out)["token"]
    assert live.get("/api/v1/info", token=token).status_code == 200
    ferry_cli("server", "token", "revoke", token, env=live.env)
    refused = live.get("/api/v1/info", token=token)
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    short = json.loads(
        ferry_cli(
            "server", "token", "create", "ada", "--json", "--expires-in", "1", env=live.env
        ).stdout
    )["token"]
    from ferry.testing.conformance import wait_until

    wait_until(lambda: live.get("/api/v1/info", token=short).status_code == 401, 10, "expiry")
    assert "expired" in live.get("/api/v1/info", token=short).json()["error"]["message"]
    store = HttpRunStore(ServerConnection(live.url, short))
    with pytest.raises(ServerAuthError, match=f"expired.*ferry login {re.escape(live.url)}"):
        store.list_experiments()


def test_only_an_admin_manages_users_and_tokens(live) -> None:  # type: ignore[no-untyped-def]
    assert live.post("/api/v1/users", {"name": "eve"}).status_code == 403
    made = live.post("/api/v1/users", {"name": "bob"}, token=live.admin_token)
    assert made.status_code == 200
    token = live.post("/api/v1/tokens", {"user": "bob"}, token=live.admin_token).json()["token"]
    assert live.get("/api/v1/info", token=token).json()["user"] == "bob"


def test_a_run_scoped_token_writes_its_run_and_children_and_reads_nothing_else(live) -> None:  # type: ignore[no-untyped-def]
    store = HttpRunStore(ServerConnection(live.url, live.user_token))
    for run_id, parent in (
        ("scope_1_aaaaaaaa", None),
        ("scope_1_bbbbbbbb", "scope_1_aaaaaaaa"),
        ("scope_1_cccccccc", None),
    ):
        store.create_run(RunRecord(id=run_id, experiment="scope", parent_id=parent))
    env = dict(live.env)
    from ferry.tracking.accounts import ServerStore

    server_store = ServerStore(live.database_url)
    token = server_store.create_token("ada", scope="run:scope_1_aaaaaaaa")
    server_store.close()
    job = HttpRunStore(ServerConnection(live.url, token))
    job.set_tags("scope_1_aaaaaaaa", {"from": "job"})
    job.set_tags("scope_1_bbbbbbbb", {"from": "job"})  # a child of its run
    assert job.get_run("scope_1_bbbbbbbb").tags["from"] == "job"
    with pytest.raises(ServerAuthError, match="cannot touch run scope_1_cccccccc"):
        job.set_tags("scope_1_cccccccc", {"from": "job"})
    with pytest.raises(ServerAuthError, match="scoped to run"):
        job.get_run("scope_1_cccccccc")
    with pytest.raises(ServerAuthError):
        job.list_experiments()
    with pytest.raises(ServerAuthError):
        job.list_targets()
    answer = httpx.post(
        live.url + "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": "scope_1_cccccccc", "key": "m", "value": 1, "timestamp": 0},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 403 and answer.json()["error_code"] == "PERMISSION_DENIED"
    assert env  # the CLI's environment is untouched


def test_tokens_and_passwords_appear_in_no_log_or_message(live, pg) -> None:  # type: ignore[no-untyped-def]
    """The server's log, its error messages and run details never hold a secret."""
    secret_url = live.database_url.replace("postgres@", "postgres:s3cr3t-pw@")
    proc = ferry_cli(
        "server",
        "user",
        "list",
        "--database-url",
        secret_url.replace(f":{pg.port}/", ":1/"),
        env=live.env,
        check=False,
    )
    assert proc.returncode != 0 and "s3cr3t-pw" not in proc.stderr and "***" in proc.stderr
    log = live.server_log()
    for token in live.tokens.values():
        assert token.split("_", 2)[2] not in log  # the secret (which may hold "_")
    assert "s3cr3t-pw" not in log


def test_a_token_for_the_cli_is_needed_to_log_in(live, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = ferry_cli(
        "login",
        live.url,
        "--token",
        "ferry_0123456789ab_" + "y" * 43,
        env={**live.env, "FERRY_HOME": str(tmp_path)},
        check=False,
    )
    assert proc.returncode == 2 and "refused the token" in proc.stderr
    assert not (tmp_path / "credentials.json").exists()
