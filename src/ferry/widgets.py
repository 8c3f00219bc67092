"""RunDetails: a run's status, log, metrics and children, live — a widget in Jupyter, text elsewhere.

As the reference's ``azureml.widgets.RunDetails(run).show()``: in a Jupyter kernel it embeds the
run's live page of ferry's UI when one serves the workspace (``ferry ui``, or the workspace's
server — a HyperDrive run's page shows its sweep), else an ipywidgets widget (``pip install 'ferry[notebook]'``) and returns at once, a background thread
updating it until the run ends. Anywhere else — a script, a notebook run in batch (nbclient,
papermill: requests that do not allow stdin), or ipywidgets missing — it prints a live text view
(status changes, new log lines, then the metrics and children) and returns when the run ends.
Charts are inline SVG: nothing is fetched from the network.

Children are sorted by a metric when one is given: ``RunDetails(run, sort_children_by="acc")``,
or the run's ``primary_metric_config`` property (``{"name": …, "goal": "maximize"}``), which
the reference's sweeps set. ``FERRY_RUN_DETAILS=text|widget`` forces a view;
``AMLWIDGET_SYNC=1`` (the reference's switch) makes the widget wait for the run too.

Example::

    from ferry.widgets import RunDetails        # azureml.widgets.RunDetails in the compat package
    RunDetails(run).show()
"""

from __future__ import annotations

import html
import json
import math
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ferry.status import parse_status

__all__ = ["RunDetails"]

LOG_LINES = 200  # the log tail a view keeps
_COLOURS = {"Completed": "#2e7d32", "Failed": "#c62828", "Canceled": "#c62828"}


@dataclass(frozen=True)
class Child:
    run_id: str
    status: str
    metric: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a view shows of a run at one moment (read through the public run API)."""

    run_id: str
    status: str
    target: str = ""
    details: str = ""
    started: str | None = None
    duration: float | None = None
    arguments: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[Child, ...] = ()
    sort_metric: str | None = None
    error: str | None = None

    @property
    def terminal(self) -> bool:
        try:
            return parse_status(self.status).is_terminal()
        except ValueError:
            return False

    def series(self) -> dict[str, list[float]]:
        """The metrics logged several times, as numbers (the charts)."""
        lists = {n: v for n, v in self.metrics.items() if isinstance(v, list)}
        numbers = {n: [float(x) for x in v if _is_number(x)] for n, v in lists.items()}
        return {n: v for n, v in numbers.items() if len(v) > 1}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(iso: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def sort_metric_of(run: Any, given: str | None) -> tuple[str | None, str]:
    """The metric children are sorted by, and its goal (``maximize`` unless the run's
    ``primary_metric_config`` says otherwise for that metric)."""
    raw = (run.get_properties() or {}).get("primary_metric_config")
    try:
        config = json.loads(raw) if raw else {}
    except ValueError:
        config = {}
    name = given or config.get("name")
    goal = config.get("goal") if config.get("name") == name else None
    return name, str(goal or "maximize").lower()


def take_snapshot(run: Any, metric: str | None, goal: str, cache: dict[str, Child]) -> Snapshot:
    """Read the run now; finished children are read once (``cache``)."""
    details = run.get_details()
    started, ended = _seconds(details.get("startTimeUtc")), _seconds(details.get("endTimeUtc"))
    children = []
    for child in run.get_children():
        row = cache.get(child.id)
        if row is None:
            values = child.get_metrics(metric).get(metric) if metric else None
            values = [
                v for v in (values if isinstance(values, list) else [values]) if _is_number(v)
            ]
            best = (min if goal.startswith("min") else max)(values) if values else None
            row = Child(child.id, child.get_status(), best)
            if parse_status(row.status).is_terminal():
                cache[child.id] = row
        children.append(row)
    if metric:
        sign = 1 if goal.startswith("min") else -1
        children.sort(key=lambda c: (c.metric is None, sign * (c.metric or 0.0)))
    error = (details.get("error") or {}).get("error", {}).get("message")
    return Snapshot(
        run_id=run.id,
        status=details["status"],
        target=str(details.get("target") or ""),
        details=run.get_detailed_status().get("details", ""),
        started=details.get("startTimeUtc"),
        duration=None if started is None else (ended or time.time()) - started,
        arguments=tuple(str(a) for a in details["runDefinition"].get("arguments") or ()),
        metrics=run.get_metrics(),
        children=tuple(children),
        sort_metric=metric,
        error=error,
    )


class LogTail:
    """The complete lines a log file gained since the last read (a file that is not there yet
    reads as empty)."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.offset = 0
        self.partial = b""

    def read(self, run: Any) -> list[str]:
        if self.path is None:
            files = run.get_details().get("logFiles") or {}
            if not files:
                return []
            self.path = Path(next(iter(files.values())))
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return []
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def rest(self) -> list[str]:
        """The last line when the log does not end with a newline."""
        rest, self.partial = self.partial, b""
        return [rest.decode("utf-8", "replace")] if rest else []


# rendering (pure) ---------------------------------------------------------------------------
def _value(value: Any) -> str:
    if isinstance(value, list):
        last = value[-1] if value else ""
        return f"{_value(last)} (last of {len(value)})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return json.dumps(value, default=str)[:60]
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def text_tables(snap: Snapshot) -> str:
    """The metrics table and the children table, as plain text."""
    lines = []
    if snap.metrics:
        width = max(len(name) for name in snap.metrics)
        lines += ["Metrics", *(f"  {n:<{width}}  {_value(v)}" for n, v in snap.metrics.items())]
    if snap.children:
        by = f", sorted by {snap.sort_metric}" if snap.sort_metric else ""
        lines.append(f"Children ({len(snap.children)}{by})")
        for child in snap.children:
            metric = "" if child.metric is None else f"  {snap.sort_metric}={child.metric:.6g}"
            lines.append(f"  {child.run_id}  {child.status}{metric}")
    return "\n".join(lines)


def svg_chart(name: str, values: list[float], width: int = 320, height: int = 120) -> str:
    """A small line chart of one metric, as an inline SVG element."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 20) / max(len(values) - 1, 1)
    points = " ".join(
        f"{10 + i * step:.1f},{height - 20 - (v - low) / span * (height - 40):.1f}"
        for i, v in enumerate(values)
    )
    label = html.escape(f"{name}: {values[-1]:.6g} (min {low:.4g}, max {high:.4g})")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}"><text x="10" y="14" font-size="12">{label}</text>'
        f'<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{points}"/></svg>'
    )


def _table(rows: list[tuple[str, str]], head: tuple[str, str] | None = None) -> str:
    cells = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows)
    top = f"<tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>" if head else ""
    return f"<table>{top}{cells}</table>"


def html_parts(snap: Snapshot, log: list[str]) -> dict[str, str]:
    """The widget's parts as HTML: header, properties, metrics, chart, children, log."""
    colour = _COLOURS.get(snap.status, "#1565c0")
    header = (
        f'<div style="background:{colour};color:white;padding:4px 8px">'
        f"ScriptRun Widget ({html.escape(snap.status)})</div>"
    )
    props = [("Status", snap.status + (f" ({snap.details})" if snap.details else ""))]
    props += [("Run Id", snap.run_id), ("Target", snap.target), ("Started", snap.started or "")]
    props += [("Duration", _duration(snap.duration)), ("Arguments", " ".join(snap.arguments))]
    props += [(n, _value(v)) for n, v in snap.metrics.items() if not isinstance(v, list)]
    if snap.error:
        props.append(("Error", snap.error))
    metrics = _table([(n, _value(v)) for n, v in snap.metrics.items()], ("Metric", "Value"))
    charts = "".join(svg_chart(n, v) for n, v in list(snap.series().items())[:6])
    head = ("Run Id", f"Status{f', {snap.sort_metric}' if snap.sort_metric else ''}")
    children = _table(
        [
            (c.run_id, c.status + ("" if c.metric is None else f", {c.metric:.6g}"))
            for c in snap.children
        ],
        head,
    )
    text = "\n".join(log) or "Log is empty or no log files found."
    return {
        "header": header,
        "properties": _table(props),
        "metrics": metrics if snap.metrics else "<i>No metrics yet.</i>",
        "chart": charts,
        "children": children if snap.children else "",
        "log": f'<pre style="max-height:300px;overflow:auto">{html.escape(text)}</pre>',
    }


# views --------------------------------------------------------------------------------------
class TextView:
    """Prints status changes and new log lines as they come, then the tables."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.status: str | None = None

    def update(self, snap: Snapshot, new_lines: list[str]) -> None:
        if snap.status != self.status and not snap.terminal:
            reason = f" ({snap.details})" if snap.details else ""
            self.out.write(f"[RunDetails] {snap.run_id}: {snap.status}{reason}\n")
            self.status = snap.status
        for line in new_lines:
            self.out.write(line + "\n")
        if snap.terminal:
            self.out.write(f"[RunDetails] {snap.run_id}: {snap.status} after ")
            self.out.write(f"{_duration(snap.duration) or '00:00:00'}\n")
            if snap.error:
                self.out.write(f"Error occurred: {snap.error}\n")
            tables = text_tables(snap)
            self.out.write(tables + "\n" if tables else "")
        self.out.flush()


class WidgetView:
    """The ipywidgets widget: one HTML part per section, replaced on each update."""

    PARTS = ("header", "properties", "chart", "metrics", "children", "log")

    def __init__(self) -> None:
        import ipywidgets  # type: ignore[import-untyped,import-not-found,unused-ignore]

        self.parts = {name: ipywidgets.HTML(value="") for name in self.PARTS}
        self.box = ipywidgets.VBox(list(self.parts.values()))
        self.log: list[str] = []

    def update(self, snap: Snapshot, new_lines: list[str]) -> None:
        self.log = [*self.log, *new_lines][-LOG_LINES:]
        for name, value in html_parts(snap, self.log).items():
            if self.parts[name].value != value:
                self.parts[name].value = value


def choose_view(environ: Mapping[str, str], shell: Any) -> str:
    """``widget`` in an interactive Jupyter kernel with ipywidgets, else ``text``."""
    forced = environ.get("FERRY_RUN_DETAILS", "").strip().lower()
    if forced in ("text", "widget"):
        return forced
    kernel = getattr(shell, "kernel", None)
    if kernel is None or type(shell).__name__ != "ZMQInteractiveShell":
        return "text"  # a script, or IPython in a terminal
    if not getattr(kernel, "_allow_stdin", True):
        return "text"  # a batch run (nbclient, papermill): nobody sees a widget
    import importlib.util

    return "widget" if importlib.util.find_spec("ipywidgets") else "text"


class RunDetails:
    """The reference's run widget: ``RunDetails(run).show()``.

    Example::

        details = RunDetails(run, sort_children_by="accuracy")
        details.show()          # Jupyter: a live widget, returns at once; elsewhere: live text
    """

    def __init__(self, run_instance: Any, sort_children_by: str | None = None) -> None:
        self.run = run_instance
        self.sort_children_by = sort_children_by
        self.view: WidgetView | None = None
        self.refresh = float(os.environ.get("AZUREML_OVERRIDE_ALL_WIDGET_REFRESH_TIME") or 1.0)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._children: dict[str, Child] = {}

    def show(
        self, render_lib: Any = None, widget_settings: Any = None, out: TextIO | None = None
    ) -> None:
        """Display the run: see the module docstring (``render_lib``, the reference's
        Databricks hook, gets the final view as HTML once the run has ended)."""
        if render_lib is not None:
            snap, log = self._follow(None)
            render_lib("".join(html_parts(snap, log[-LOG_LINES:]).values()))
            return
        shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
        if choose_view(os.environ, shell) == "text":
            self._follow(TextView(out or sys.stdout))
            return
        from IPython.display import display

        studio = self.studio_url()
        if studio is not None and os.environ.get("FERRY_RUN_DETAILS", "").lower() != "widget":
            from IPython.display import IFrame

            display(IFrame(studio, width="100%", height=760))  # type: ignore[no-untyped-call,unused-ignore]
            return
        display(self.widget())  # type: ignore[no-untyped-call,unused-ignore]
        if os.environ.get("AMLWIDGET_SYNC") == "1":
            self.wait()

    def studio_url(self) -> str | None:
        """The run's live page in ferry's UI, framed for a notebook (``?embed=1``), when a UI
        serves the run's workspace (``ferry ui``, or its server); None otherwise. A local UI's
        token rides in the address (the page keeps it and drops it from the address bar)."""
        from ferry.ui.address import serving

        ws = getattr(getattr(self.run, "experiment", None), "workspace", None)
        run_id = getattr(self.run, "id", None)
        if ws is None or not run_id:
            return None
        if getattr(ws, "server", None):
            return f"{str(ws.server).rstrip('/')}/runs/{run_id}?embed=1"
        studio = serving(Path(ws.path))
        if studio is None:
            return None
        token = f"&token={studio.token}" if studio.token else ""
        return f"{studio.url}/runs/{run_id}?embed=1{token}"

    def widget(self) -> Any:
        """The live ipywidgets widget (updates start now, from a background thread)."""
        if self.view is None:
            self.view = WidgetView()
            self._thread = threading.Thread(target=self._update_widget, daemon=True)
            self._thread.start()
        return self.view.box

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the widget's updates to end (the run ended); False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def stop(self) -> None:
        """Stop updating the widget (the run goes on)."""
        self._stop.set()

    def get_widget_data(self, widget_settings: Any = None) -> dict[str, Any]:
        """The data a view shows, under the reference's keys."""
        snap, lines = self._step(LogTail())
        return {
            "status": snap.status,
            "workbench_run_details_uri": self.run.get_portal_url(),
            "run_id": snap.run_id,
            "run_properties": dict(self.run.get_properties()),
            "child_runs": [c.__dict__ for c in snap.children],
            "children_metrics": {"metric": snap.sort_metric},
            "run_metrics": dict(snap.metrics),
            "run_logs": "\n".join(lines[-LOG_LINES:]),
            "graph": snap.series(),
        }

    def _step(self, tail: LogTail) -> tuple[Snapshot, list[str]]:
        """Read the run, and its new log lines (all the rest of the log once it has ended)."""
        metric, goal = sort_metric_of(self.run, self.sort_children_by)
        snap = take_snapshot(self.run, metric, goal, self._children)
        lines = tail.read(self.run)
        return snap, lines + (tail.read(self.run) + tail.rest() if snap.terminal else [])

    def _follow(self, view: TextView | None) -> tuple[Snapshot, list[str]]:
        """Follow the run to its end, feeding ``view``; returns the last snapshot and the log."""
        tail, log = LogTail(), []
        while True:
            snap, lines = self._step(tail)
            log += lines
            if view is not None:
                view.update(snap, lines)
            if snap.terminal:
                return snap, log
            time.sleep(min(self.refresh, 0.25))

    def _update_widget(self) -> None:
        assert self.view is not None
        tail, errors = LogTail(), 0
        while not self._stop.is_set() and errors < 3:  # three errors in a row stop the updates
            try:
                snap, lines = self._step(tail)
                self.view.update(snap, lines)
                if snap.terminal:
                    return
                errors = 0
            except Exception as exc:  # shown in the widget, as the reference's does
                errors += 1
                self.view.parts[
                    "header"
                ].value += f"<div>Error occurred: {html.escape(str(exc))}</div>"
            self._stop.wait(self.refresh)
