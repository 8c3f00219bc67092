// The Metrics tab: one card per metric, shaped by the server (series already downsampled,
// tables capped); a card refetches when the run's events say its metric changed.
import { html, useEffect, useRef, useState } from "../vendor/htm-preact-standalone.module.js";
import { fileBlobUrl, get } from "../api.js";
import { Chart, ReferenceChart } from "../charts.js";
import { ErrorBox, Loading, fmtValue } from "../common.js";

const ROWS = 500;

function TableView({ columns }) {
  const names = Object.keys(columns || {});
  const rows = Math.max(0, ...names.map((n) => (columns[n] || []).length));
  return html`<div class="table-wrap small"><table class="grid" data-testid="metric-table" data-rows=${rows}>
    <thead><tr>${names.map((n) => html`<th scope="col">${n}</th>`)}</tr></thead>
    <tbody>${Array.from({ length: Math.min(rows, ROWS) }, (_, i) => html`<tr>${names.map((n) => html`<td class=${typeof columns[n][i] === "number" ? "num" : ""}>${fmtValue(columns[n][i])}</td>`)}</tr>`)}</tbody>
  </table>${rows > ROWS ? html`<p class="muted">First ${ROWS} of ${rows} rows.</p>` : ""}</div>`;
}

const IMAGES = 24; // fetched at once at most (each is a request of its own)

function Images({ runId, files: all }) {
  const files = all.slice(0, IMAGES);
  const [urls, setUrls] = useState([]);
  useEffect(() => {
    const controller = new AbortController();
    const made = [];
    Promise.all(files.map((f) => fileBlobUrl(runId, f, controller.signal).then((u) => (made.push(u), u)))).then(setUrls, () => {});
    return () => {
      controller.abort();
      made.forEach((u) => URL.revokeObjectURL(u));
    };
  }, [runId, files.join("\n")]);
  return html`<div class="images">${urls.map((u, i) => html`<figure><img src=${u} alt=${files[i]} data-testid="metric-image" /><figcaption>${files[i]}</figcaption></figure>`)}</div>
    ${all.length > IMAGES ? html`<p class="muted">The first ${IMAGES} of ${all.length} images; the rest are in the Files tab.</p>` : ""}`;
}

function MetricBody({ runId, data }) {
  switch (data.kind) {
    case "series":
      return html`<${Chart} series=${[{ label: data.name, x: data.x, y: data.y }]} />
        <p class="readout muted" data-testid="readout">${data.y.length} points${data.downsampled ? ` (downsampled from ${data.total})` : ""} · last ${fmtValue(data.y[data.y.length - 1])} · min ${fmtValue(Math.min(...data.y))} · max ${fmtValue(Math.max(...data.y))}</p>`;
    case "value":
      return html`<p class="big-value" data-testid="metric-value">${fmtValue(data.value)}</p>`;
    case "list": {
      const values = data.values || [];
      const numeric = values.length > 1 && values.every((v) => typeof v === "number");
      return html`${numeric ? html`<${Chart} xLabel="index" series=${[{ label: data.name, x: values.map((_, i) => i), y: values }]} />` : html`<${TableView} columns=${{ [data.name]: values }} />`}
        ${data.truncated ? html`<p class="muted">Values cut for the page.</p>` : ""}`;
    }
    case "table":
      return html`<${TableView} columns=${data.columns} />${data.truncated ? html`<p class="muted">Values cut for the page.</p>` : ""}`;
    case "json":
      return html`<${ReferenceChart} chartType=${data.chart_type} value=${data.value} />`;
    case "image":
      return html`<${Images} runId=${runId} files=${data.files || []} />`;
    default:
      return html`<pre class="code">${JSON.stringify(data, null, 2)}</pre>`;
  }
}

function MetricCard({ runId, metric, version }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const controller = new AbortController();
    get(`/ui/runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(metric.name)}?points=1000`, { signal: controller.signal }).then(
      (d) => { setData(d); setError(null); },
      (err) => err.name === "AbortError" || setError(err),
    );
    return () => controller.abort();
  }, [runId, metric.name, version]);
  return html`<section class="card metric" data-testid="metric" data-metric=${metric.name} data-kind=${data?.kind || ""}>
    <h3>${metric.name} <span class="muted small">${metric.type}${metric.count > 1 ? ` · ${metric.count} values` : ""}</span></h3>
    <${ErrorBox} error=${error} />
    ${data ? html`<${MetricBody} runId=${runId} data=${data} />` : !error && html`<${Loading} />`}
  </section>`;
}

export function MetricsTab({ runId, metrics, changed }) {
  // bump a metric's version when the events say it changed: at most once per 2 s (throttled)
  const [versions, setVersions] = useState({});
  const pending = useRef({ names: new Set(), timer: null });
  useEffect(() => {
    const p = pending.current;
    changed.names.forEach((n) => p.names.add(n));
    if (p.timer || !p.names.size) return;
    p.timer = setTimeout(() => {
      const names = [...p.names];
      p.names.clear();
      p.timer = null;
      setVersions((v) => {
        const next = { ...v };
        for (const n of names) next[n] = (next[n] || 0) + 1;
        return next;
      });
    }, 2000);
  }, [changed.at]);
  useEffect(() => () => clearTimeout(pending.current.timer), []);
  if (!metrics?.length) return html`<p class="muted">No metrics logged.</p>`;
  return html`<div class="metrics-grid">${metrics.map((m) => html`<${MetricCard} key=${m.name} runId=${runId} metric=${m} version=${versions[m.name] || 0} />`)}</div>`;
}
