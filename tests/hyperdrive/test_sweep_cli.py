"""``ferry sweep job.yml`` and ``ferry runs show HD_…``, through the real CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sweep_helpers import poll

from ferry import ComputeTarget, Workspace
from ferry.cli.main import main
from ferry.testing.fake import FakeCompute
from ferry.tracking import RunQuery

SPOOL = [{"k": "metric", "name": "acc", "value": v} for v in (0.2, 0.6)]
JOB = """\
experiment: cli-sweeps
source_directory: src
script: train.py
arguments: [--data, d.csv]
compute_target: fake
sweep:
  sampling: {sampling}
  parameters:
    --alpha: {alpha}
    --kernel: "choice('linear', 'rbf')"
  policy: {policy}
  metric: acc
  goal: maximize
  max_total_runs: 3
  max_concurrent_runs: 2
  seed: 4
"""


def ferry(capsys: pytest.CaptureFixture[str], ws: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(["--workspace", str(ws), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(awkward_dir: Path) -> Path:
    (awkward_dir / "src").mkdir()
    (awkward_dir / "src" / "train.py").write_text("print(1)\n", encoding="utf-8")
    ws = Workspace.create(awkward_dir / "ws")
    ComputeTarget.attach(ws, "fake", FakeCompute.attach_configuration(spool=SPOOL))
    ws.store.close()
    return awkward_dir


def write(project: Path, **fields: str) -> Path:
    values = {
        "sampling": "random",
        "alpha": '"uniform(0, 1)"',
        "policy": "{bandit: {slack_factor: 0.1}}",
    }
    values.update(fields)
    path = project / "sweep 'job'.yml"
    path.write_text(JOB.format(**values), encoding="utf-8")
    return path


def test_ferry_sweep_runs_the_sweep_and_prints_the_children_sorted(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    code, out, err = ferry(capsys, project / "ws", "sweep", str(write(project)), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "Completed" and summary["sampling"]["name"] == "RANDOM"
    assert summary["policy"]["name"] == "Bandit" and summary["seed"] == 4
    assert len(summary["children"]) == 3 and summary["bestPrimaryMetric"] == 0.6
    assert f"sweep {summary['runId']} queued on fake" in err
    code, out, _ = ferry(capsys, project / "ws", "runs", "show", summary["runId"], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["runId"] == summary["runId"]
    assert [c["run_id"] for c in shown["hyperdrive"]["children"]] == [
        c["run_id"] for c in summary["children"]
    ]
    code, out, _ = ferry(capsys, project / "ws", "runs", "show", summary["runId"])
    assert code == 0 and "acc (maximize)" in out and f"{summary['runId']}_<n>" in out
    assert "--alpha 0." in out and "--kernel " in out


def test_a_sweep_file_given_by_a_relative_path_finds_its_source(
    capsys: pytest.CaptureFixture[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project)
    monkeypatch.chdir(project)
    code, out, err = ferry(capsys, project / "ws", "sweep", "sweep 'job'.yml", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "Completed"


def test_ferry_sweep_no_wait_prints_the_id_and_a_grid_works(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    job = write(project, sampling="grid", alpha="[0.1, 0.2]", policy="none")
    code, out, _ = ferry(capsys, project / "ws", "sweep", str(job), "--no-wait")
    sweep_id = out.strip()
    assert code == 0 and sweep_id.startswith("HD_")
    ws = Workspace(project / "ws")
    poll(lambda: ws.store.get_run(sweep_id).status.is_terminal(), what="the sweep to end")
    assert ws.store.get_run(sweep_id).status.value == "Completed"
    assert len(ws.store.list_runs(RunQuery(parent_id=sweep_id))) == 3  # 4 points, 3 runs


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"alpha": '"uniform(1, 0)"'}, "min_value < max_value"),
        ({"alpha": '"__import__(1)"'}, "is not a parameter expression"),
        ({"policy": "{bandit: {slack: 0.1}}"}, "unknown argument 'slack'; BanditPolicy takes"),
        ({"policy": "{lottery: {}}"}, "unknown policy 'lottery'"),
        ({"policy": "{bandit: {}}"}, "exactly one of slack_factor or slack_amount"),
        ({"sampling": "sobol"}, "sampling must be one of random, grid, bayesian"),
        ({"sampling": "grid"}, r"expects only the following distributions: \[choice\]"),
        ({"policy": "{median: {}}\n  colour: red"}, "unknown key 'colour'"),
    ],
)
def test_bad_sweep_files_are_clear_and_write_nothing(
    capsys: pytest.CaptureFixture[str], project: Path, fields: dict[str, str], message: str
) -> None:
    code, _, err = ferry(capsys, project / "ws", "sweep", str(write(project, **fields)))
    assert code == 2 and "Traceback" not in err
    assert re.search(message, err), err
    assert "sweep 'job'.yml" in err  # the file is named
    assert Workspace(project / "ws").store.list_runs(RunQuery()) == []


def test_a_job_file_without_a_sweep_section_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], project: Path
) -> None:
    path = project / "plain.yml"
    path.write_text("script: train.py\nsource_directory: src\n", encoding="utf-8")
    code, _, err = ferry(capsys, project / "ws", "sweep", str(path))
    assert code == 2 and "needs a 'sweep:' section" in err
    bad_job = project / "bad.yml"
    bad_job.write_text("script: nope.py\nsource_directory: src\nsweep: {metric: acc}\n")
    code, _, err = ferry(capsys, project / "ws", "sweep", str(bad_job))
    assert code == 2 and str(bad_job) in err and "nope.py" in err
