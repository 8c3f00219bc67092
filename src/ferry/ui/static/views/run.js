// A run's page: header with status and actions, then tabs. The page follows the run's events
// (status and metric changes) while it is live; the Log tab follows the log on its own stream.
import { html, useEffect, useRef, useState } from "../vendor/htm-preact-standalone.module.js";
import { followRun, get, post } from "../api.js";
import { ErrorBox, Json, KeyValues, Link, Loading, NotFound, StatusBadge, experimentHref, fmtDuration, fmtTime, isTerminal, navigate, runHref, useTitle } from "../common.js";
import { DatasetsTab, EnvironmentTab, FilesTab, GitTab, ModelsTab, SnapshotTab } from "./files.js";
import { LogTab } from "./log.js";
import { MetricsTab } from "./metrics.js";
import { RunsTable } from "./runs.js";
import { SweepView } from "./sweep.js";

function TagsEditor({ runId, tags, onChange }) {
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [editing, setEditing] = useState(null);
  const [error, setError] = useState(null);
  const send = async (body) => {
    try {
      const answer = await post(`/ui/runs/${encodeURIComponent(runId)}/tags`, body, { retry: false });
      onChange(answer.tags);
      setError(null);
    } catch (err) {
      setError(err);
    }
  };
  const add = (event) => {
    event.preventDefault();
    if (!key.trim()) return;
    send({ set: { [key.trim()]: value }, remove: [] });
    setKey("");
    setValue("");
  };
  return html`<div class="tags" data-testid="tags">
    <ul class="chips">${Object.entries(tags || {}).map(([k, v]) =>
      editing?.key === k
        ? html`<li class="chip"><form onSubmit=${(e) => { e.preventDefault(); send({ set: { [k]: editing.value }, remove: [] }); setEditing(null); }}>
            <label>${k} = <input value=${editing.value} aria-label=${`Value of tag ${k}`} onInput=${(e) => setEditing({ key: k, value: e.target.value })} ref=${(el) => el && el.focus()} /></label>
            <button type="submit">Save</button><button type="button" onClick=${() => setEditing(null)}>Cancel</button></form></li>`
        : html`<li class="chip" data-tag=${k}><button type="button" class="link" title="Edit" onClick=${() => setEditing({ key: k, value: String(v) })}><b>${k}</b>${v !== "" ? ` = ${v}` : ""}</button>
            <button type="button" class="remove" aria-label=${`Remove tag ${k}`} onClick=${() => send({ set: {}, remove: [k] })}>×</button></li>`,
    )}</ul>
    <form class="add-tag" onSubmit=${add}>
      <input placeholder="tag" aria-label="New tag name" value=${key} onInput=${(e) => setKey(e.target.value)} />
      <input placeholder="value" aria-label="New tag value" value=${value} onInput=${(e) => setValue(e.target.value)} />
      <button type="submit">Add tag</button>
    </form>
    <${ErrorBox} error=${error} />
  </div>`;
}

/** The reference's error shape ({error: {code, message}, exitCode, logTail}) or a flat one. */
function RunError({ error }) {
  const inner = error.error && typeof error.error === "object" ? error.error : error;
  const tail = error.logTail || inner.details || error.details;
  return html`<section data-testid="run-error"><h2>Error</h2>
    <div class="error-box"><b>${inner.code ? `${inner.code}: ` : ""}</b>${inner.message || "The run failed."}${error.exitCode != null ? html` <span class="muted">(exit code ${error.exitCode})</span>` : ""}</div>
    ${tail && html`<pre class="code">${typeof tail === "string" ? tail : JSON.stringify(tail, null, 2)}</pre>`}
    <details><summary>Error details</summary><${Json} value=${error} /></details>
  </section>`;
}

function Timings({ timings }) {
  const entries = Object.entries(timings || {}).filter(([, v]) => typeof v === "number");
  if (!entries.length) return html`<p class="muted">No phase timings yet.</p>`;
  const total = entries.reduce((n, [, v]) => n + v, 0) || 1;
  return html`<table class="kv timings" data-testid="timings"><tbody>${entries.map(([phase, seconds]) => html`<tr>
    <th scope="row">${phase}</th><td class="num">${fmtDuration(seconds)}</td>
    <td class="bar-cell"><span class="bar" style=${`width:${Math.max(1, (100 * seconds) / total).toFixed(1)}%`}></span></td></tr>`)}</tbody></table>`;
}

function Overview({ detail, setTags }) {
  const run = detail.run;
  return html`<div class="overview" data-testid="overview">
    <div class="cols">
      <section><h2>Status</h2>
        <table class="kv"><tbody>
          <tr><th scope="row">Status</th><td><${StatusBadge} status=${run.status} /></td></tr>
          <tr><th scope="row">Experiment</th><td><${Link} href=${experimentHref(run.experiment)}>${run.experiment}</${Link}></td></tr>
          ${detail.parent && html`<tr><th scope="row">Parent</th><td><${Link} href=${runHref(detail.parent.id)}>${detail.parent.display_name || detail.parent.id}</${Link}></td></tr>`}
          <tr><th scope="row">Run id</th><td><code>${run.id}</code></td></tr>
          <tr><th scope="row">Target</th><td>${run.target}${run.host ? ` (${run.host})` : ""}</td></tr>
          <tr><th scope="row">Type</th><td>${run.run_type}</td></tr>
          <tr><th scope="row">Created</th><td>${fmtTime(run.created_at)}</td></tr>
          <tr><th scope="row">Started</th><td>${fmtTime(run.start_time)}</td></tr>
          <tr><th scope="row">Ended</th><td>${fmtTime(run.end_time)}</td></tr>
          <tr><th scope="row">Duration</th><td>${fmtDuration(run.duration)}</td></tr>
        </tbody></table>
      </section>
      <section><h2>Phase timings</h2><${Timings} timings=${run.timings} /></section>
    </div>
    ${run.error && html`<${RunError} error=${run.error} />`}
    ${run.description && html`<section><h2>Description</h2><p class="description">${run.description}</p></section>`}
    <section><h2>Tags</h2><${TagsEditor} runId=${run.id} tags=${run.tags} onChange=${setTags} /></section>
    <div class="cols">
      <section><h2>Parameters</h2><${KeyValues} data=${run.params} /></section>
      <section><h2>Latest metrics</h2><${KeyValues} data=${run.metrics} /></section>
    </div>
    <section><h2>Arguments</h2>${run.arguments?.length ? html`<pre class="code">${run.arguments.map((a) => (/^[\w.,:=/+@%-]+$/.test(String(a)) ? String(a) : JSON.stringify(String(a)))).join(" ")}</pre>` : html`<p class="muted">None.</p>`}</section>
    <section><h2>Properties</h2><${KeyValues} data=${run.properties} /></section>
    <section><details><summary>Run definition</summary><${Json} value=${run.definition} /></details></section>
  </div>`;
}

function tabsOf(detail) {
  const tabs = [];
  if (detail.sweep) tabs.push(["sweep", "Sweep"]);
  tabs.push(["overview", "Overview"], ["log", "Log"], ["metrics", `Metrics (${detail.metrics?.length || 0})`], ["files", "Files"], ["snapshot", "Snapshot"], ["environment", "Environment"], ["git", "Git"]);
  if (detail.children?.total) tabs.push(["children", `Children (${detail.children.total})`]);
  if (detail.datasets && (detail.datasets.inputs?.length || detail.datasets.outputs?.length)) tabs.push(["datasets", "Datasets"]);
  if (detail.models?.length) tabs.push(["models", "Models"]);
  return tabs;
}

export function RunPage({ runId, tab }) {
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [changed, setChanged] = useState({ names: [], at: 0 });
  const [actionError, setActionError] = useState(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    get(`/ui/runs/${encodeURIComponent(runId)}`, { signal: controller.signal }).then(
      (data) => { setDetail(data); setError(null); },
      (err) => err.name === "AbortError" || setError(err),
    );
    return () => controller.abort();
  }, [runId, tick]);

  useTitle(detail ? `${detail.run.display_name || detail.run.id} (${detail.run.status})` : error?.status === 404 ? "Not found" : runId);
  const tabs = detail ? tabsOf(detail) : [];
  const current = tabs.some(([k]) => k === tab) ? tab : tabs[0]?.[0];
  const live = detail && !isTerminal(detail.run.status);

  const latest = useRef(null);
  latest.current = detail;
  const onStatus = (row) => {
    const d = latest.current;
    if (d && row.status !== d.run.status && (isTerminal(row.status) || !d.logs?.length)) setTick((t) => t + 1);
    setDetail((x) => (x ? { ...x, run: { ...x.run, ...row }, terminal: isTerminal(row.status) } : x));
  };
  const onMetrics = ({ names }) => {
    setChanged({ names: names || [], at: Date.now() });
    const known = new Set((latest.current?.metrics || []).map((m) => m.name));
    if ((names || []).some((n) => !known.has(n))) setTick((t) => t + 1);
  };

  // status/metrics stream while live (the Log tab opens its own, with the log in it)
  const onLogTab = current === "log";
  useEffect(() => {
    if (!live || onLogTab) return undefined;
    const controller = new AbortController();
    followRun(runId, { signal: controller.signal, handlers: { status: onStatus, metrics: onMetrics } }).catch(() => {});
    return () => controller.abort();
  }, [runId, live, onLogTab]);

  if (error?.status === 404) return html`<${NotFound} message=${error.message || `No run ${runId}.`} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!detail) return html`<${Loading} />`;

  const run = detail.run;
  const act = async (what) => {
    setBusy(true);
    try {
      const answer = await post(`/ui/runs/${encodeURIComponent(runId)}/${what}`, {}, { retry: false });
      setActionError(null);
      if (what === "rerun") navigate(runHref(answer.run_id));
      else setDetail((d) => ({ ...d, run: { ...d.run, status: answer.status || d.run.status } }));
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };
  const choose = (key) => {
    const url = new URL(location.href);
    url.searchParams.set("tab", key);
    navigate(url.pathname + url.search, { replace: true });
  };
  const onTabKey = (event) => {
    const focused = event.target?.dataset?.tab || current; // move from the focused tab
    const i = tabs.findIndex(([k]) => k === focused);
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    event.preventDefault();
    const next = tabs[(i + step + tabs.length) % tabs.length][0];
    choose(next);
    setTimeout(() => document.getElementById(`tab-${next}`)?.focus());
  };
  const body = {
    sweep: () => html`<${SweepView} runId=${runId} detail=${detail} />`,
    overview: () => html`<${Overview} detail=${detail} setTags=${(tags) => setDetail((d) => ({ ...d, run: { ...d.run, tags } }))} />`,
    log: () => html`<${LogTab} runId=${runId} detail=${detail} onStatus=${onStatus} onMetrics=${onMetrics} />`,
    metrics: () => html`<${MetricsTab} runId=${runId} metrics=${detail.metrics} changed=${changed} />`,
    files: () => html`<${FilesTab} runId=${runId} detail=${detail} />`,
    snapshot: () => html`<${SnapshotTab} runId=${runId} snapshot=${detail.snapshot} />`,
    environment: () => html`<${EnvironmentTab} environment=${detail.environment} />`,
    git: () => html`<${GitTab} git=${detail.git} />`,
    children: () => html`<${RunsTable} parent=${runId} />`,
    datasets: () => html`<${DatasetsTab} datasets=${detail.datasets} />`,
    models: () => html`<${ModelsTab} models=${detail.models} />`,
  }[current];

  return html`<article class="run" data-testid="run-page" data-run-id=${run.id} data-status=${run.status}>
    <div class="title-row">
      <h1>${run.display_name || run.id} ${run.number != null ? html`<span class="muted">#${run.number}</span>` : ""} <${StatusBadge} status=${run.status} /></h1>
      <div class="actions">
        ${!isTerminal(run.status) && html`<button type="button" data-testid="cancel" disabled=${busy || run.status === "CancelRequested"} onClick=${() => act("cancel")}>Cancel</button>`}
        <button type="button" data-testid="rerun" disabled=${busy} onClick=${() => act("rerun")}>Rerun</button>
      </div>
    </div>
    <p class="crumbs"><${Link} href=${experimentHref(run.experiment)}>${run.experiment}</${Link}>${detail.parent ? html` › <${Link} href=${runHref(detail.parent.id)}>${detail.parent.display_name || detail.parent.id}</${Link}>` : ""} › <code>${run.id}</code></p>
    <${ErrorBox} error=${actionError} />
    <div class="tabs" role="tablist" aria-label="Run views" onKeyDown=${onTabKey}>
      ${tabs.map(([key, label]) => html`<button type="button" role="tab" id=${`tab-${key}`} data-tab=${key} aria-selected=${key === current ? "true" : "false"}
        tabindex=${key === current ? 0 : -1} aria-controls="tab-panel" onClick=${() => choose(key)}>${label}</button>`)}
    </div>
    <div id="tab-panel" role="tabpanel" aria-labelledby=${`tab-${current}`} data-testid=${`tab-${current}`}>${body()}</div>
  </article>`;
}
