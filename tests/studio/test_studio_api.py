"""The studio's API over a local workspace with real runs (the app in-process, real SQLite).

Runs are submitted with ferry's own API and run to completion; only the sweep's records and a
million-value series are written straight into the store (a real sweep and a real million
values would take minutes and prove nothing more about these read models).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ferry import Experiment, ScriptRunConfig, Workspace
from ferry.status import RunStatus
from ferry.tracking import MetricSeries, RunRecord

TOKEN = "test-token-0123456789"

TRAIN = """\
import argparse
from ferry import Run
p = argparse.ArgumentParser(); p.add_argument("--alpha", type=float); p.add_argument("--team")
a = p.parse_args()
run = Run.get_context()
for i in range(20):
    run.log("loss", 1.0 / (i + 1) + a.alpha)
run.log("acc", a.alpha)
run.log_table("roc", {"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]})
run.log_confusion_matrix("cm", {"schema_type": "confusion_matrix", "data": {"class_labels": ["a", "b"], "matrix": [[3, 1], [0, 4]]}})
run.tag("team", a.team)
run.add_properties({"lr": str(a.alpha)})
for i in range(3000):
    print(f"line {i} of the log")
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("studio")
    source = root / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN)
    ws = Workspace.create(str(root / "ws"))
    exp = Experiment(ws, "studio")
    runs = []
    for alpha, team in ((0.1, "a"), (0.5, "b"), (0.9, "a")):
        config = ScriptRunConfig(
            str(source), "train.py", arguments=["--alpha", str(alpha), "--team", team]
        )
        runs.append(exp.submit(config))
        if alpha == 0.5:  # the third run's code differs: a diff to show
            (source / "train.py").write_text(TRAIN + "# tuned\n")
    for run in runs:
        run.wait_for_completion(raise_on_error=True)
    from ferry.ui.local import build_app

    with TestClient(build_app(ws, TOKEN)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield {"client": client, "ws": ws, "runs": [r.id for r in runs], "root": root}
    ws.store.close()


def _post(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    answer = client.post(f"/api/v1/ui/{path}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_runs_table_filters_sorts_and_counts(studio: dict[str, Any]) -> None:
    client = studio["client"]
    page = _post(client, "runs", {"experiment": "studio", "order_by": ["metrics.acc DESC"]})
    assert [r["metrics"]["acc"] for r in page["runs"]] == [0.9, 0.5, 0.1]
    assert page["total"] == 3 and page["next_offset"] is None
    assert {"acc", "loss"} <= set(page["columns"]["metrics"])
    assert page["columns"]["tags"] == ["team"] and page["columns"]["params"] == ["lr"]
    assert page["runs"][0]["params"] == {"lr": "0.9"}
    page = _post(
        client,
        "runs",
        {
            "experiment": "studio",
            "filter": 'metrics.acc > 0.3 and tags.team = "a" and status = "Completed"',
        },
    )
    assert [r["metrics"]["acc"] for r in page["runs"]] == [0.9] and page["total"] == 1
    # sorted across pages: page 2 of size 1 ascending is the middle value
    page = _post(client, "runs", {"order_by": ["params.lr ASC"], "offset": 1, "limit": 1})
    assert page["runs"][0]["params"]["lr"] == "0.5" and page["total"] == 3
    assert page["next_offset"] == 2


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"filter": "metrics.acc >"}, "add a value"),
        ({"filter": "metrics.acc > 'x'"}, "number"),
        ({"filter": "status = 'Sleeping'"}, "unknown run status"),
        ({"order_by": ["nonsense.acc DESC"]}, "nonsense"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_filters_are_400_with_the_reason(
    studio: dict[str, Any], body: dict[str, Any], words: str
) -> None:
    answer = studio["client"].post("/api/v1/ui/runs", json=body)
    assert answer.status_code in (400, 422), answer.text
    assert words in answer.text


def test_unknown_things_and_missing_tokens(studio: dict[str, Any]) -> None:
    client = studio["client"]
    for path in ("runs/no_such_run", "runs/no_such_run/sweep", "diff?a=x&b=y"):
        answer = client.get(f"/api/v1/ui/{path}")
        assert answer.status_code == 404, answer.text
        assert "no run" in answer.json()["error"]["message"]
    answer = client.post("/api/v1/ui/runs", json={"experiment": "nope"})
    assert answer.status_code == 404 and "no experiment 'nope'" in answer.text
    bare = TestClient(client.app)
    assert bare.get("/api/v1/ui/experiments").status_code == 401
    wrong = bare.get("/api/v1/ui/experiments", headers={"Authorization": "Bearer nottheone"})
    assert wrong.status_code == 401
    # the pages themselves hold no data and need no token; an unknown API path stays a 404
    page = bare.get("/runs/no_such_run")
    assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
    assert bare.get("/api/v1/ui/nothing-here").status_code in (401, 404)
    assert client.get("/api/v1/nothing-here").status_code == 404
    odd = bare.get("/no/such/page")  # the app shows its own not-found page
    assert odd.status_code == 200 and "<!doctype html>" in odd.text.lower()


def test_run_page_tells_what_the_run_used(studio: dict[str, Any]) -> None:
    client = studio["client"]
    run_id = studio["runs"][0]
    page = client.get(f"/api/v1/ui/runs/{run_id}").json()
    assert page["run"]["status"] == "Completed" and page["terminal"] is True
    assert page["run"]["arguments"] == ["--alpha", "0.1", "--team", "a"]
    assert {"run", "prepare"} <= set(page["run"]["timings"])
    assert page["logs"][0]["name"] == "user_logs/std_log.txt" and page["logs"][0]["size"] > 0
    kinds = {m["name"]: (m["type"], m["count"]) for m in page["metrics"]}
    assert kinds["loss"] == ("scalar", 20) and kinds["cm"][0] == "confusion_matrix"
    assert page["snapshot"]["files"] == 1
    assert page["environment"]["name"] is not None
    assert page["run"]["portal_url"].endswith(f"/runs/{run_id}")
    files = client.get(f"/api/v1/ui/runs/{run_id}/snapshot").json()["files"]
    assert [f["path"] for f in files] == ["train.py"]
    code = client.get(f"/api/v1/ui/runs/{run_id}/snapshot/file", params={"path": "train.py"})
    assert 'run.log("acc", a.alpha)' in code.json()["text"]
    missing = client.get(f"/api/v1/ui/runs/{run_id}/snapshot/file", params={"path": "nope.py"})
    assert missing.status_code == 404


def test_charts_of_each_kind(studio: dict[str, Any]) -> None:
    client = studio["client"]
    run_id = studio["runs"][1]
    loss = client.get(f"/api/v1/ui/runs/{run_id}/metrics/loss").json()
    assert loss["kind"] == "series" and loss["total"] == 20 and loss["x"][:2] == [0.0, 1.0]
    assert loss["y"][0] == pytest.approx(1.5)
    assert client.get(f"/api/v1/ui/runs/{run_id}/metrics/acc").json()["value"] == 0.5
    roc = client.get(f"/api/v1/ui/runs/{run_id}/metrics/roc").json()
    assert roc["kind"] == "table" and roc["columns"]["tpr"] == [0, 0.8, 1]
    cm = client.get(f"/api/v1/ui/runs/{run_id}/metrics/cm").json()
    assert cm["kind"] == "json" and cm["chart_type"] == "confusion_matrix"
    assert cm["value"]["data"]["matrix"] == [[3, 1], [0, 4]]
    missing = client.get(f"/api/v1/ui/runs/{run_id}/metrics/nope")
    assert missing.status_code == 400 and "no metric 'nope'" in missing.text


def test_a_million_points_arrive_thinned_with_their_spike(studio: dict[str, Any]) -> None:
    client, ws = studio["client"], studio["ws"]
    run_id = studio["runs"][2]
    values = [float(i % 1000) / 1000 for i in range(1_000_000)]
    values[654_321] = 50.0  # one spike among a million: the thinned line must keep it
    now = time.time()
    ws.store.log_series([MetricSeries(run_id, "big", "scalar", values, None, [now] * len(values))])
    started = time.perf_counter()
    big = client.get(f"/api/v1/ui/runs/{run_id}/metrics/big", params={"points": 1000}).json()
    took = time.perf_counter() - started
    assert big["total"] == 1_000_000 and big["downsampled"] is True
    assert len(big["x"]) <= 1000 and max(big["y"]) == 50.0
    assert 654_321.0 in big["x"]
    assert took < 10, f"a million-point chart took {took:.1f} s on the server"
    compare = _post(client, "metrics/compare", {"runs": studio["runs"], "name": "loss"})
    assert [s["run_id"] for s in compare["series"]] == studio["runs"]


def test_logs_come_a_page_at_a_time_on_line_boundaries(studio: dict[str, Any]) -> None:
    client = studio["client"]
    run_id = studio["runs"][0]
    path = f"/api/v1/ui/runs/{run_id}/log"
    tail = client.get(path, params={"offset": -1, "limit": 1000}).json()
    assert tail["eof"] is True and tail["text"].startswith("line ")
    assert tail["text"].endswith("line 2999 of the log\n") and len(tail["text"]) <= 1000
    head = client.get(path, params={"offset": 0, "limit": 1000}).json()
    assert head["text"].startswith("line 0 of the log\n") and head["text"].endswith("\n")
    assert head["eof"] is False and head["next_offset"] == len(head["text"].encode())
    following = client.get(path, params={"offset": head["next_offset"], "limit": 100}).json()
    assert following["text"].startswith("line ")
    bad = client.get(path, params={"name": "../../etc/passwd"})
    assert bad.status_code == 400 and "is not a log of run" in bad.text
    too_big = client.get(path, params={"limit": 1 << 30})
    assert too_big.status_code in (400, 422)


def test_compare_and_code_diff(studio: dict[str, Any]) -> None:
    client = studio["client"]
    first, second, third = studio["runs"]
    both = client.get("/api/v1/ui/compare", params={"runs": f"{first},{third}"}).json()
    assert both["params"]["lr"] == ["0.1", "0.9"] and "lr" in both["differs"]["params"]
    assert "team" not in both["differs"]["tags"] and "acc" in both["differs"]["metrics"]
    same = client.get("/api/v1/ui/diff", params={"a": first, "b": second}).json()
    assert same["same_code"] is True and same["code"] == ""
    changed = client.get("/api/v1/ui/diff", params={"a": first, "b": third}).json()
    assert changed["same_code"] is False and "+# tuned" in changed["code"]
    too_many = client.get("/api/v1/ui/compare", params={"runs": ",".join(["x"] * 60)})
    assert too_many.status_code == 404 or too_many.status_code == 400


def test_tags_edit_and_rerun(studio: dict[str, Any]) -> None:
    client, ws = studio["client"], studio["ws"]
    run_id = studio["runs"][0]
    tags = _post(client, f"runs/{run_id}/tags", {"set": {"note": "good"}, "remove": ["team"]})
    assert tags["tags"] == {"note": "good"}
    bad = client.post(f"/api/v1/ui/runs/{run_id}/tags", json={"set": {" ": "x"}})
    assert bad.status_code == 400
    new_id = _post(client, f"runs/{run_id}/rerun", {})["run_id"]
    assert new_id != run_id
    from ferry.run import Run

    rerun = Run(Experiment(ws, "studio"), new_id)
    rerun.wait_for_completion(raise_on_error=True)
    assert rerun.get_properties()["ferry.rerun_of"] == run_id


def test_sweep_view_ranks_children_and_says_why_some_stopped(studio: dict[str, Any]) -> None:
    client, ws = studio["client"], studio["ws"]
    store = ws.store
    now = time.time()
    parent = "studio_sweep_1"
    store.create_run(
        RunRecord(
            id=parent,
            experiment="studio",
            status=RunStatus.COMPLETED,
            run_type="hyperdrive",
            created_at=now,
            tags={
                "primary_metric_config": json.dumps({"name": "acc", "goal": "maximize"}),
                "policy_config": json.dumps({"name": "Bandit"}),
            },
        )
    )
    for index, (lr, acc) in enumerate(((0.1, 0.7), (0.3, 0.9), (0.5, 0.2))):
        child = f"{parent}_{index}"
        store.set_tags(parent, {child: json.dumps({"--lr": lr})})
        store.create_run(
            RunRecord(
                id=child,
                experiment="studio",
                status=RunStatus.COMPLETED if index != 2 else RunStatus.CANCELED,
                parent_id=parent,
                created_at=now + index,
            )
        )
        store.log_series([MetricSeries(child, "acc", "scalar", [acc], None, [now])])
    store.set_tags(f"{parent}_2", {"ferry.hyperdrive.terminated": "Bandit: 0.2 < 0.9 - 0.1"})
    sweep = client.get(f"/api/v1/ui/runs/{parent}/sweep").json()
    assert [c["metric"] for c in sweep["children"]] == [0.9, 0.7, 0.2]
    assert sweep["children"][0]["best"] and sweep["hyperparameters"] == ["--lr"]
    assert sweep["children"][2]["early_terminated"] and "Bandit" in sweep["children"][2]["reason"]
    assert sweep["policy"] == "Bandit"
    page = client.get(f"/api/v1/ui/runs/{parent}").json()
    assert page["sweep"]["primary_metric"] == "acc" and page["children"]["total"] == 3
    assert not any(k.startswith(parent) for k in page["run"]["tags"])  # children's values hidden
    children = _post(client, "runs", {"parent": parent, "order_by": ["metrics.acc DESC"]})
    assert [r["id"] for r in children["runs"]] == [f"{parent}_1", f"{parent}_0", f"{parent}_2"]
    plain = client.get(f"/api/v1/ui/runs/{studio['runs'][0]}/sweep")
    assert plain.status_code == 400 and "not a HyperDrive run" in plain.text


def test_pages_and_assets_are_served(studio: dict[str, Any]) -> None:
    bare = TestClient(studio["client"].app)
    for path in ("/", "/runs", "/compare", "/experiments/studio", "/signin"):
        assert bare.get(path).status_code == 200
    for sneaky in ("/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd"):
        answer = bare.get(sneaky)
        assert "root:" not in answer.text and answer.status_code in (200, 404)
    assert bare.get("/static/no-such-file.js").status_code == 404
    index = (Path(__file__).parents[2] / "src/ferry/ui/static/index.html").read_text()
    assert bare.get("/").text == index


def test_sorts_on_every_column_of_the_table(studio: dict[str, Any]) -> None:
    client = studio["client"]
    for key in ("duration", "target", "run_type", "experiment", "run_name", "status", "created"):
        for way in ("ASC", "DESC"):
            page = _post(client, "runs", {"order_by": [f"attributes.{key} {way}"]})
            assert page["total"] >= 3, key
    page = _post(client, "runs", {"experiment": "studio", "order_by": ["attributes.duration ASC"]})
    durations = [r["duration"] for r in page["runs"] if r["duration"] is not None]
    assert durations == sorted(durations)
    slow = _post(client, "runs", {"experiment": "studio", "filter": "attributes.duration > 0"})
    assert slow["total"] >= 3


def test_the_events_of_a_run_without_a_done_marker_end(studio: dict[str, Any]) -> None:
    """An interactive run (``start_logging``) has no supervisor writing a done marker: once it
    has ended, its stream still ends (it streamed forever)."""
    client, ws = studio["client"], studio["ws"]
    run = Experiment(ws, "interactive").start_logging()
    run.log("loss", 0.5)
    run.complete()
    started = time.monotonic()
    with client.stream(
        "GET", f"/api/v1/ui/runs/{run.id}/events", params={"log": "user_logs/std_log.txt"}
    ) as stream:
        events = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert events[0] == "event: status" and events[-1] == "event: end"
    assert time.monotonic() - started < 15
    page = client.get(f"/api/v1/ui/runs/{run.id}").json()
    assert page["run"]["status"] == "Completed" and page["terminal"] is True


def _status_rows(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The rows of a stream's ``status`` events, as they come."""
    event = ""
    for line in lines:
        if line.startswith("event:"):
            event = line.partition(":")[2].strip()
        elif line.startswith("data:") and event == "status":
            yield json.loads(line.partition(":")[2])


@pytest.mark.timeout(60)
def test_the_event_stream_counts_children_again_only_when_the_run_changes(
    studio: dict[str, Any],
) -> None:
    """A status row's ``children`` is counted when the stream starts and again when the run's
    status or tags change (a sweep tags its parent with each child), not on every look: a new
    metric sends a row with the count it had (every look per open stream counted them)."""
    client, store = studio["client"], studio["ws"].store
    parent, now = "studio_events_parent", time.time()
    store.create_run(
        RunRecord(id=parent, experiment="studio", status=RunStatus.RUNNING, created_at=now)
    )

    def child(index: int) -> None:
        store.create_run(
            RunRecord(
                id=f"{parent}_{index}",
                experiment="studio",
                status=RunStatus.RUNNING,
                parent_id=parent,
                created_at=now + index,
            )
        )

    with client.stream("GET", f"/api/v1/ui/runs/{parent}/events") as stream:
        rows = _status_rows(stream.iter_lines())
        assert next(rows)["children"] == 0
        child(0)
        store.log_series([MetricSeries(parent, "loss", "scalar", [0.5], None, [now])])
        row = next(rows)
        assert row["metrics"] == {"loss": 0.5} and row["children"] == 0
        store.set_tags(parent, {f"{parent}_0": "{}"})  # hidden from the row: only the count moves
        assert next(rows)["children"] == 1
        child(1)
        store.set_status(parent, RunStatus.COMPLETED)
        row = next(rows)
        assert row["status"] == "Completed" and row["children"] == 2
