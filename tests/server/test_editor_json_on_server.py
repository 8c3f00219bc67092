"""What the VS Code extension reads from the CLI for a server workspace whose token expired:
one JSON line with the reason and the fix (the extension shows it as an error with the fix)."""

from __future__ import annotations

import json
from pathlib import Path

from server_helpers import LiveServer, ferry_cli

from ferry.testing.conformance import wait_until


def test_an_expired_token_is_one_json_error_naming_ferry_login(
    live: LiveServer, tmp_path: Path
) -> None:
    made = ferry_cli(
        "server", "token", "create", "ada", "--json", "--expires-in", "1", env=live.env
    )
    short = json.loads(made.stdout)["token"]
    wait_until(lambda: live.get("/api/v1/info", token=short).status_code == 401, 10, "expiry")
    folder = tmp_path / "project"
    (folder / ".ferry").mkdir(parents=True)
    (folder / ".ferry" / "config.json").write_text(json.dumps({"server": live.url}))
    env = {**live.env, "FERRY_TOKEN": short}
    env.pop("FERRY_DATABASE_URL", None)
    for command in (["experiments", "list", "--json"], ["runs", "list", "--json"]):
        done = _in(folder, command, env)
        assert done.returncode != 0, done
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, done.stdout
        answer = json.loads(lines[0])
        assert "expired" in answer["error"] and "Traceback" not in done.stderr
        assert f"ferry login {live.url}" in (answer.get("fix") or answer["error"])


def _in(folder: Path, command: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    """The CLI run from inside the project folder, as the extension runs it."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from ferry.cli.main import main; main()", *command],
        capture_output=True,
        text=True,
        cwd=folder,
        env={**os.environ, **env, "FERRY_NO_DAEMON": "1"},
        timeout=120,
        check=False,
    )
