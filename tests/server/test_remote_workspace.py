"""A remote workspace works as a local one: submit, follow, read — supervised by the server."""

from __future__ import annotations

import io
from pathlib import Path

from ferry import Experiment, ScriptRunConfig


def test_a_run_submitted_to_the_server_completes_with_its_log_and_metrics(
    remote_ws,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = tmp_path / "src dir ü"
    src.mkdir()
    (src / "train.py").write_text(
        "from ferry import Run\n"
        "run = Run.get_context()\n"
        "for i in range(3):\n"
        "    run.log('loss', 1.0 / (i + 1))\n"
        "print('hello from the server')\n"
    )
    run = Experiment(remote_ws, "remote").submit(ScriptRunConfig(str(src), "train.py"))
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, out=out, timeout_seconds=120)
    assert details["status"] == "Completed", out.getvalue()
    assert "hello from the server" in out.getvalue()
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1.0 / 3]
