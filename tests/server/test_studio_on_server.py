"""The studio under `ferry server`: the same pages and UI API, signed in with a user's token;
a rerun from the UI is queued for the server's supervisors; a run's portal URL is its page on
the server."""

from __future__ import annotations

from pathlib import Path

import httpx
from server_helpers import LiveServer

from ferry import Experiment, ScriptRunConfig


def test_the_ui_serves_a_server_workspace_to_its_users(
    live: LiveServer,
    remote_ws,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(
        "from ferry import Run\nrun = Run.get_context()\nrun.log('acc', 0.75)\nprint('studio')\n"
    )
    run = Experiment(remote_ws, "studio-server").submit(ScriptRunConfig(str(src), "train.py"))
    assert run.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    assert run.get_portal_url() == f"{live.url}/runs/{run.id}"
    with httpx.Client(base_url=live.url, timeout=30) as client:
        page = client.get(f"/runs/{run.id}")  # the page holds no data: no token needed
        assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
        assert client.get("/api/v1/ui/experiments").status_code == 401
        client.headers["Authorization"] = f"Bearer {live.user_token}"
        info = client.get("/api/v1/ui/info").json()
        assert info["mode"] == "server" and info["workspace"] == live.url
        table = client.post(
            "/api/v1/ui/runs", json={"experiment": "studio-server", "filter": "metrics.acc = 0.75"}
        ).json()
        assert [r["id"] for r in table["runs"]] == [run.id]
        detail = client.get(f"/api/v1/ui/runs/{run.id}").json()
        assert detail["run"]["status"] == "Completed"
        log = client.get(f"/api/v1/ui/runs/{run.id}/log").json()
        assert "studio" in log["text"]
        rerun = client.post(f"/api/v1/ui/runs/{run.id}/rerun")
        assert rerun.status_code == 200, rerun.text
        new_id = rerun.json()["run_id"]
    again = Experiment(remote_ws, "studio-server")
    from ferry.run import Run

    second = Run(again, new_id)
    assert second.wait_for_completion(timeout_seconds=120)["status"] == "Completed"
    assert second.get_metrics()["acc"] == 0.75
