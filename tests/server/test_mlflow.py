"""The real MLflow client records into ferry runs: through the server, inside a job, locally.

MLflow's own status updates (RUNNING when a script starts logging, FINISHED at its exit) never
end a ferry run: its status stays its supervisor's.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ferry import Environment, Experiment, ScriptRunConfig, Workspace

SCRIPT = textwrap.dedent(
    """
    import mlflow
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_param("alpha", "0.5")
    mlflow.set_tag("team", "a")
    print("logged with mlflow", mlflow.active_run().info.run_id)
    """
)


@pytest.fixture(autouse=True)
def _fresh_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets its own tracking URI; nothing leaks from one to the next."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _python_env() -> Environment:
    """This interpreter (MLflow and ferry installed), as a user-managed environment."""
    env = Environment("with-mlflow")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = sys.executable
    return env


def test_the_mlflow_client_records_into_ferry_experiments_and_runs(remote_ws) -> None:  # type: ignore[no-untyped-def]
    mlflow.set_tracking_uri(remote_ws.get_mlflow_tracking_uri())
    experiment_id = mlflow.create_experiment("mlflow-made")
    with mlflow.start_run(experiment_id=experiment_id, run_name="first") as active:
        for step in range(10):
            mlflow.log_metric("acc", step / 10, step=step)
        mlflow.log_params({"lr": "0.1", "depth": "3"})
        mlflow.set_tag("owner", "ada")
        run_id = active.info.run_id
    client = MlflowClient()
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "first"
    assert got.data.params == {"lr": "0.1", "depth": "3"}
    assert got.data.metrics == {"acc": 0.9} and got.data.tags["owner"] == "ada"
    history = client.get_metric_history(run_id, "acc")
    assert [m.value for m in history] == [s / 10 for s in range(10)]
    assert [m.step for m in history] == list(range(10))
    found = mlflow.search_runs(
        [experiment_id], "metrics.acc > 0.5 and tags.owner = 'ada'", output_format="list"
    )
    assert [r.info.run_id for r in found] == [run_id]
    assert mlflow.get_experiment_by_name("mlflow-made").experiment_id == experiment_id
    # every ferry reader sees the same run
    run = remote_ws.get_run(run_id)
    assert run.get_status() == "Completed"
    assert run.get_metrics()["acc"][-1] == 0.9
    assert run.get_properties()["lr"] == "0.1" and run.get_tags()["owner"] == "ada"


def test_mlflow_artifacts_go_through_the_server(remote_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mlflow.set_tracking_uri(remote_ws.get_mlflow_tracking_uri())
    experiment_id = mlflow.create_experiment("mlflow-artifacts")
    (tmp_path / "report.txt").write_text("a report\n")
    with mlflow.start_run(experiment_id=experiment_id) as active:
        mlflow.log_artifact(str(tmp_path / "report.txt"), artifact_path="docs")
    client = MlflowClient()
    assert [f.path for f in client.list_artifacts(active.info.run_id, "docs")] == [
        "docs/report.txt"
    ]
    fetched = client.download_artifacts(active.info.run_id, "docs/report.txt", str(tmp_path / "dl"))
    assert Path(fetched).read_text() == "a report\n"
    run = remote_ws.get_run(active.info.run_id)
    assert "docs/report.txt" in run.get_file_names()


def test_mlflow_in_a_ferry_job_lands_in_that_run_through_the_server(
    remote_ws, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(SCRIPT)
    config = ScriptRunConfig(str(src), "train.py", environment=_python_env())
    run = Experiment(remote_ws, "mlflow-job").submit(config)
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, out=out, timeout_seconds=180)
    assert details["status"] == "Completed", out.getvalue()
    assert f"logged with mlflow {run.id}" in out.getvalue()
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert run.get_properties()["alpha"] == "0.5" and run.get_tags()["team"] == "a"
    # the job's token was scoped to the run; its secret is in no detail of the run
    assert re.search(r"ferry_[0-9a-f]{12}_", str(run.get_details())) is None


def test_mlflow_in_a_ferry_job_of_a_local_workspace_lands_in_that_run(
    workspace: Workspace, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(SCRIPT)
    config = ScriptRunConfig(str(src), "train.py", environment=_python_env())
    run = Experiment(workspace, "mlflow-local").submit(config)
    out = io.StringIO()
    details = run.wait_for_completion(show_output=True, out=out, timeout_seconds=180)
    assert details["status"] == "Completed", out.getvalue()
    assert run.get_metrics()["loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert run.get_properties()["alpha"] == "0.5" and run.get_tags()["team"] == "a"


def test_a_local_workspace_serves_the_mlflow_client_in_process(workspace: Workspace) -> None:
    uri = workspace.get_mlflow_tracking_uri()
    assert uri.startswith("ferry:///")
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("local-mlflow")
    with mlflow.start_run(experiment_id=experiment_id) as active:
        mlflow.log_metric("m", 2.5)
    run = workspace.get_run(active.info.run_id)
    assert run.get_metrics() == {"m": 2.5} and run.get_status() == "Completed"


def test_a_script_run_by_hand_with_the_servers_uri_records_a_new_run(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An MLflow script outside ferry, pointed at the server (MLflow's own variables)."""
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_TRACKING_URI": live.url,
            "MLFLOW_TRACKING_TOKEN": live.user_token,
            "MLFLOW_EXPERIMENT_NAME": "by-hand",
        }
    )
    env.pop("MLFLOW_RUN_ID", None)
    (tmp_path / "s.py").write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "s.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = re.search(r"logged with mlflow (\w+)", proc.stdout).group(1)  # type: ignore[union-attr]
    answer = live.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id}).json()
    assert answer["run"]["info"]["status"] == "FINISHED"
    assert {m["key"]: m["value"] for m in answer["run"]["data"]["metrics"]} == {"loss": 0.2}
