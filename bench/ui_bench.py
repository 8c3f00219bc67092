"""The studio UI (issue 16) at scale, in headless chromium, against `mlflow ui` on the same runs.

1. **Runs table at 100,000 runs** (10 metrics and 5 tags each, one experiment): the server's time
   for the first page sorted by a metric (goal <= 100 ms), and chromium's time from navigation to
   the table painted (goal <= 1 s). Anchor: `mlflow ui` (`mlflow server`) over the same runs in
   its own SQLite database, chromium's time to its first run row.
2. **Big series**: a run with a 1,000,000-point metric, its chart painted (goal <= 1 s).
3. **Live log**: a line printed by a running script appears on its page (goal <= 1 s).

Runs for (1) are written straight into each database (submitting 100,000 real runs takes hours
and measures the submit path, not the UI). Chromium is Debian's (`/usr/bin/chromium`).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import VENV_BIN, median, scratch, write_result
from server_bench import load_ferry, load_mlflow

RUNS = int(os.environ.get("FERRY_BENCH_UI_RUNS", "100000"))
METRICS = [f"m{i}" for i in range(10)]
TAGS = [f"t{i}" for i in range(5)]
TAG_VALUES = [f"v{i}" for i in range(7)]
BIG = 1_000_000
REPEAT = 5
CHROMIUM = os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium")


def start_ui(ws_path: Path) -> tuple[subprocess.Popen[str], str, str]:
    proc = subprocess.Popen(
        [str(VENV_BIN / "ferry"), "-w", str(ws_path), "ui", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    found = re.match(r"ferry ui: (http://\S+)/\?token=(\S+)", proc.stdout.readline())
    assert found, "ferry ui did not print its address"
    return proc, found.group(1), found.group(2)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def server_page(base: str, token: str) -> float:
    import httpx

    body = {"experiment": "bench", "order_by": ["metrics.m3 DESC"], "limit": 50}
    times = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        client.post("/api/v1/ui/runs", json=body).raise_for_status()  # warm
        for _ in range(REPEAT):
            t = time.perf_counter()
            page = client.post("/api/v1/ui/runs", json=body)
            times.append(time.perf_counter() - t)
            page.raise_for_status()
    found = page.json()
    assert found["total"] == RUNS and len(found["runs"]) == 50
    values = [r["metrics"]["m3"] for r in found["runs"]]
    assert values == sorted(values, reverse=True)
    return median(times)


def browser_times(
    base: str, token: str, ws_path: Path, mlflow_url: str, exp_id: str
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{base}/?token={token}")  # keeps the token
        page.wait_for_selector("text=bench")
        times = []
        for _ in range(REPEAT):
            t = time.perf_counter()
            page.goto(f"{base}/experiments/bench")
            page.wait_for_selector("[data-testid=runs-table] tbody tr")
            times.append(time.perf_counter() - t)
        out["table"] = median(times)
        page.screenshot(path=str(ws_path.parent / "ui-table.png"))
        # the big series
        run_id = big_run(ws_path)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            page.goto(f"{base}/runs/{run_id}?tab=metrics")
            page.wait_for_selector("[data-metric=big] canvas")
            times.append(time.perf_counter() - t)
        out["big"] = median(times)
        # the live log
        out["live"] = live_log(page, base, ws_path)
        # the anchor: mlflow's runs table, to its first run row
        anchor = browser.new_page(viewport={"width": 1366, "height": 768})
        times = []
        for _ in range(3):
            t = time.perf_counter()
            try:
                anchor.goto(f"{mlflow_url}/#/experiments/{exp_id}/runs", timeout=60_000)
                anchor.wait_for_selector("text=run-99999", timeout=60_000)
                times.append(time.perf_counter() - t)
            except Exception as exc:
                out["mlflow_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                break
        out["mlflow"] = median(times) if times else None
        anchor.screenshot(path=str(ws_path.parent / "mlflow-table.png"))
        browser.close()
    return out


def big_run(ws_path: Path) -> str:
    from ferry import Experiment, ScriptRunConfig, Workspace
    from ferry.tracking import MetricSeries

    src = ws_path.parent / "src"
    src.mkdir(exist_ok=True)
    (src / "quick.py").write_text("print('hi')\n")
    ws = Workspace.create(str(ws_path))
    run = Experiment(ws, "big").submit(ScriptRunConfig(str(src), "quick.py"))
    run.wait_for_completion()
    rng = random.Random(2)
    values = [rng.random() for _ in range(BIG)]
    ws.store.log_series([MetricSeries(run.id, "big", "scalar", values, None, [time.time()] * BIG)])
    ws.store.close()
    return run.id


def live_log(page: Any, base: str, ws_path: Path) -> float:
    from ferry import Experiment, ScriptRunConfig, Workspace

    src = ws_path.parent / "src"
    (src / "live.py").write_text(
        "import time\nprint('ready', flush=True)\ntime.sleep(4)\n"
        "print(f'stamp {time.time()!r}', flush=True)\ntime.sleep(1)\n"
    )
    ws = Workspace.create(str(ws_path))
    run = Experiment(ws, "live").submit(ScriptRunConfig(str(src), "live.py"))
    page.goto(f"{base}/runs/{run.id}?tab=log")
    page.wait_for_selector("[data-testid=log] >> text=ready", timeout=30_000)
    page.wait_for_selector("[data-testid=log] >> text=/stamp [0-9.]+/", timeout=30_000)
    seen = time.time()
    text = page.inner_text("[data-testid=log]")
    stamp = float(re.search(r"stamp ([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    run.wait_for_completion()
    ws.store.close()
    return seen - stamp


def main() -> None:
    work = scratch("ui")
    ws_path = work / "ws"
    from ferry import Workspace

    ws = Workspace.create(str(ws_path))
    ws.store.list_experiments()  # the database, migrated
    ws.store.close()
    t = time.perf_counter()
    load_ferry(
        f"sqlite:///{ws_path / 'ferry.db'}", RUNS, experiment="bench", metrics=METRICS,
        tags=TAGS, tag_values=TAG_VALUES,
    )  # fmt: skip
    print(f"loaded {RUNS} runs into ferry in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    mlflow_db = work / "mlflow.db"
    port = _free_port()
    mlflow_url = f"http://127.0.0.1:{port}"
    mlflow_log = open(work / "mlflow.log", "wb")  # noqa: SIM115 - closed below
    anchor = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{mlflow_db}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--artifacts-destination", str(work / "mlflow-artifacts")],
        stdout=mlflow_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    proc, base, token = start_ui(ws_path)
    try:
        _wait(mlflow_url + "/health", anchor)
        from mlflow.tracking import MlflowClient

        exp_id = MlflowClient(mlflow_url).create_experiment("bench")
        load_mlflow(
            f"sqlite:///{mlflow_db}", exp_id, RUNS, metrics=METRICS, tags=TAGS,
            tag_values=TAG_VALUES, analyze=False,
        )  # fmt: skip
        load = os.getloadavg()[0]
        server = server_page(base, token)
        found = browser_times(base, token, ws_path, mlflow_url, exp_id)
    finally:
        stop(proc)
        stop(anchor)
        mlflow_log.close()
    mlflow_text = (
        f"{found['mlflow'] * 1000:.0f} ms"
        if found.get("mlflow") is not None
        else f"failed: {found.get('mlflow_error')}"
    )
    ratio = f"{found['mlflow'] / found['table']:.1f}x faster" if found.get("mlflow") else "—"
    rows = [
        ("runs table: server, first page sorted by a metric", f"{server * 1000:.1f} ms", "<= 100 ms", "—"),
        ("runs table: navigation to table painted (chromium)", f"{found['table'] * 1000:.0f} ms", "<= 1 s",
         f"mlflow ui: {mlflow_text} ({ratio})"),
        ("1,000,000-point chart painted", f"{found['big'] * 1000:.0f} ms", "<= 1 s", "—"),
        ("printed line shown on the run page", f"{found['live'] * 1000:.0f} ms", "<= 1 s", "—"),
    ]  # fmt: skip
    lines = [
        "## Studio UI (issue 16): 100,000 runs in headless chromium\n",
        f"{RUNS:,} runs x 10 metrics x 5 tags in one experiment (SQLite, `ferry ui`); medians of "
        f"{REPEAT}; load average at start {load:.1f}. Anchor: `mlflow server`'s UI over the same "
        "runs (its own SQLite), chromium to its first run row.\n",
        "| measure | ferry | goal | anchor |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
    ]
    write_result("ui", "\n".join(lines))
    json.dumps(found)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[Any]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited early")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


if __name__ == "__main__":
    main()
