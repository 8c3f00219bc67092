"""The CLI's --json answers an editor (editors/vscode) builds on: workspace, experiments, pages of
runs with duration and metrics, runs followed as JSON lines, tags, cancel, rerun, restore,
comparing a snapshot with the working folder, and errors as one JSON object."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from ferry.workspace import Workspace

TRAIN = """
from ferry import Run
run = Run.get_context()
for epoch in range(3):
    print(f"epoch {epoch}", flush=True)
    run.log("loss", 1.0 / (epoch + 1))
run.log("acc", 0.9)
"""

SLEEPER = """
import time
print("started", flush=True)
time.sleep(120)
"""


def _script(folder: Path, body: str, name: str = "train.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_workspace_and_experiments_as_json(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    shown = ferry("workspace", "show", "--json").json()
    assert shown["kind"] == "local" and shown["server"] is None
    assert shown["chosenBy"] == "option"
    assert Path(shown["location"]) == (awkward_dir / "cli ws").resolve()
    assert not (awkward_dir / "cli ws").exists()  # described, not made: nothing to list yet
    assert ferry("experiments", "list", "--json").json()["error"].startswith("there is no ferry")
    Workspace.create(awkward_dir / "cli ws")
    assert ferry("experiments", "list", "--json").json() == []

    script = _script(awkward_dir / "proj", TRAIN)
    assert ferry("submit", str(script), "-e", "first", "--json").code == 0
    names = [e["name"] for e in ferry("experiments", "list", "--json").json()]
    assert names == ["first"]

    made = ferry("init", str(awkward_dir / "fresh"), "--json", workspace=None).json()
    assert Path(made["configFile"]).is_file()
    assert Path(made["workspace"]) == (awkward_dir / "fresh" / ".ferry").resolve()


def test_submit_stream_gives_queued_log_and_end_lines(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(awkward_dir / "proj", TRAIN)
    res = ferry("submit", str(script), "-e", "stream", "--json", "--stream")
    assert res.code == 0, res.err
    events = _lines(res.out)
    assert events[0]["event"] == "queued" and events[0]["experiment"] == "stream"
    run_id = events[0]["runId"]
    text = "".join(e["text"] for e in events if e["event"] == "log")
    assert "epoch 0\nepoch 1\nepoch 2\n" in text
    assert events[-1]["event"] == "end" and events[-1]["status"] == "Completed"
    assert events[-1]["details"]["metrics"]["acc"] == 0.9
    assert events[-1]["details"]["portalUrl"] is None  # no `ferry ui` serves this workspace
    assert ferry("runs", "show", events[0]["runId"], "--json").json()["portalUrl"] is None
    assert all(e["runId"] == run_id for e in events)

    # following a finished run: its whole log, then the end
    followed = _lines(ferry("runs", "logs", run_id, "-f", "--json").out)
    assert "epoch 2" in "".join(e.get("text", "") for e in followed)
    assert followed[-1]["status"] == "Completed"


def test_runs_list_pages_with_duration_and_primary_metric(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(awkward_dir / "proj", TRAIN)
    ids = [ferry("submit", str(script), "-e", "paged", "--json").json()["runId"] for _ in range(3)]
    first = ferry("runs", "list", "-e", "paged", "-n", "2", "--page", "--json").json()
    assert [r["runId"] for r in first["runs"]] == ids[::-1][:2]  # newest first
    assert first["nextOffset"] == 2
    rest = ferry("runs", "list", "-e", "paged", "-n", "2", "--offset", "2", "--page", "--json")
    assert [r["runId"] for r in rest.json()["runs"]] == [ids[0]]
    assert rest.json()["nextOffset"] is None
    run = first["runs"][0]
    assert run["status"] == "Completed" and run["durationSeconds"] > 0
    assert run["metrics"] == {"acc": 0.9, "loss": 1.0 / 3}
    assert run["primaryMetric"] == {"name": "acc", "value": 0.9}  # first by name: none is known
    # without --page: the plain list, as before
    assert len(ferry("runs", "list", "-e", "paged", "--json").json()) == 3


def test_tags_restore_and_compare_with_folder(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    folder = awkward_dir / "proj"
    script = _script(folder, TRAIN)
    _script(folder, "x = 1\n", name="helper.py")
    run_id = ferry("submit", str(script), "-e", "tags", "--json").json()["runId"]

    tagged = ferry("runs", "tag", run_id, "team=a", "solo", "--json").json()
    assert tagged["tags"] == {"team": "a", "solo": None}
    assert ferry("runs", "tag", run_id, "--remove", "solo", "--json").json()["tags"] == {
        "team": "a"
    }

    unchanged = ferry("runs", "compare", run_id, "--folder", str(folder), "--json").json()
    assert (unchanged["added"], unchanged["removed"], unchanged["changed"]) == ([], [], [])
    script.write_text(script.read_text() + "# changed\n")
    (folder / "helper.py").unlink()
    _script(folder, "y = 2\n", name="new.py")
    changed = ferry("runs", "compare", run_id, "--folder", str(folder), "--json").json()
    assert changed["added"] == ["new.py"]
    assert changed["removed"] == ["helper.py"]
    assert changed["changed"] == ["train.py"]

    out = awkward_dir / "restored"
    restored = ferry("runs", "restore", run_id, "-o", str(out), "--json").json()
    assert Path(restored["path"]) == out.resolve()
    assert (out / "helper.py").read_text() == "x = 1\n"


def test_cancel_and_rerun_as_json(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    script = _script(awkward_dir / "slow", SLEEPER)
    queued = ferry("submit", str(script), "-e", "slow", "--no-wait", "--json").json()
    run_id = queued["runId"]
    assert queued["target"] == "local" and queued["experiment"] == "slow"
    canceled = ferry("runs", "cancel", run_id, "--json").json()
    assert canceled["cancelRequested"] is True
    end = _lines(ferry("runs", "logs", run_id, "-f", "--json").out)[-1]
    assert end["event"] == "end" and end["status"] == "Canceled"
    again = ferry("runs", "cancel", run_id, "--json").json()
    assert again == {"runId": run_id, "cancelRequested": False, "status": "Canceled"}

    fast = _script(awkward_dir / "fast", TRAIN)
    done = ferry("submit", str(fast), "-e", "fast", "--json").json()["runId"]
    events = _lines(ferry("runs", "rerun", done, "--json", "--stream").out)
    assert events[0]["event"] == "queued" and events[0]["rerunOf"] == done
    assert events[-1]["status"] == "Completed"


def test_errors_are_one_json_object_with_the_fix(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    Workspace.create(awkward_dir / "cli ws")
    missing = ferry("runs", "show", "nope_1", "--json")
    assert missing.code != 0
    error = missing.json()
    assert "nope_1" in error["error"] and error["fix"]
    assert "Traceback" not in missing.err

    usage = ferry("runs", "list", "--bogus", "--json")
    assert usage.code == 2
    assert usage.json() == {
        "error": "No such option '--bogus'.",
        "fix": "see `ferry runs list --help`",
    }

    absent = ferry("submit", str(awkward_dir / "absent.py"), "--json")
    assert absent.code == 2 and "does not exist" in absent.json()["error"]

    # --json after -- belongs to the script: the error stays plain text
    plain = ferry("submit", str(awkward_dir / "absent.py"), "--", "--json")
    assert plain.code == 2 and plain.out == "" and "does not exist" in plain.err


def test_a_sweeps_children_page_best_first(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    folder = awkward_dir / "sweep"
    _script(
        folder,
        """
        import argparse
        from ferry import Run
        parser = argparse.ArgumentParser()
        parser.add_argument("--alpha", type=float)
        args = parser.parse_args()
        Run.get_context().log("acc", args.alpha)
        """,
    )
    (folder / "sweep.yml").write_text(
        textwrap.dedent(
            """
            experiment: swept
            script: train.py
            compute_target: local
            sweep:
              sampling: grid
              parameters: {--alpha: "choice(0.2, 0.9, 0.5)"}
              metric: acc
              goal: maximize
              max_total_runs: 3
              max_concurrent_runs: 3
            """
        ),
        encoding="utf-8",
    )
    done = ferry("sweep", str(folder / "sweep.yml"), "--json")
    assert done.code == 0, done.err
    sweep_id = done.json()["runId"]
    top = ferry("runs", "list", "-e", "swept", "--page", "--json").json()["runs"]
    assert [r["runId"] for r in top] == [sweep_id] and top[0]["runType"] == "hyperdrive"
    page = ferry("runs", "list", "--parent", sweep_id, "-n", "2", "--page", "--json").json()
    values = [r["primaryMetric"]["value"] for r in page["runs"]]
    assert values == [0.9, 0.5] and page["nextOffset"] == 2
    rest = ferry("runs", "list", "--parent", sweep_id, "--offset", "2", "--page", "--json")
    assert [r["primaryMetric"] for r in rest.json()["runs"]] == [{"name": "acc", "value": 0.2}]


def test_an_error_ends_a_json_lines_stream_as_one_line(ferry, awkward_dir: Path) -> None:  # type: ignore[no-untyped-def]
    folder = awkward_dir / "bad"
    _script(folder, TRAIN)
    (folder / "bad.job.yml").write_text("script: train.py\ncompute_target: nowhere\n")
    res = ferry("submit", str(folder / "bad.job.yml"), "--json", "--stream")
    assert res.code == 2
    [error] = _lines(res.out)  # one line, a JSON object
    assert "nowhere" in error["error"] and "ferry target attach" in error["fix"]


def test_workspace_show_says_what_chose_it(
    ferry,  # type: ignore[no-untyped-def]
    awkward_dir: Path,
    monkeypatch: Any,
) -> None:
    bare = awkward_dir / "bare"
    bare.mkdir()
    monkeypatch.chdir(bare)
    default = ferry("workspace", "show", "--json", workspace=None).json()
    assert default["chosenBy"] == "default" and default["configFile"] is None
    made = ferry("init", str(bare), "--json", workspace=None).json()
    found = ferry("workspace", "show", "--json", workspace=None).json()
    assert found["chosenBy"] == "config"
    assert found["configFile"] == made["configFile"]
    assert found["location"] == made["workspace"]
