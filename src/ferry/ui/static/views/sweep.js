// A HyperDrive parent: children ranked by the primary metric, the metric over time per child,
// a parallel-coordinates view of hyperparameters against the metric, early terminations.
import { html, useEffect, useState } from "../vendor/htm-preact-standalone.module.js";
import { get, post } from "../api.js";
import { Chart } from "../charts.js";
import { ErrorBox, Link, Loading, StatusBadge, fmtValue, isTerminal, runHref, useApi } from "../common.js";

const CHART_CHILDREN = 30;

/** Blue (worst) → yellow (best) along t in [0, 1]. */
function colour(t) {
  const hue = 240 - 190 * t;
  return `hsl(${hue.toFixed(0)} 80% ${(45 + 10 * t).toFixed(0)}%)`;
}

function axisOf(name, values) {
  const present = values.filter((v) => v !== null && v !== undefined && v !== "");
  const numeric = present.length > 0 && present.every((v) => Number.isFinite(Number(v)));
  if (numeric) {
    const nums = present.map(Number);
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    return { name, pos: (v) => (v === null || v === undefined || v === "" ? null : hi === lo ? 0.5 : (Number(v) - lo) / (hi - lo)), ticks: [[0, fmtValue(lo)], [1, fmtValue(hi)]] };
  }
  const cats = [...new Set(present.map(String))].sort();
  const pos = (v) => (v === null || v === undefined ? null : cats.length === 1 ? 0.5 : cats.indexOf(String(v)) / (cats.length - 1));
  return { name, pos, ticks: cats.map((c) => [pos(c), c]) };
}

/** Parallel coordinates as SVG: an axis per hyperparameter and one for the metric. */
export function ParallelCoordinates({ children, hyperparameters, metric, goal }) {
  const W = 900;
  const H = 300;
  const pad = { l: 60, r: 60, t: 30, b: 30 };
  const axes = [...hyperparameters.map((h) => axisOf(h, children.map((c) => c.params?.[h]))), axisOf(metric, children.map((c) => c.metric))];
  const x = (i) => pad.l + (axes.length > 1 ? (i * (W - pad.l - pad.r)) / (axes.length - 1) : 0);
  const y = (p) => H - pad.b - p * (H - pad.t - pad.b);
  const metricAxis = axes[axes.length - 1];
  const quality = (c) => {
    const p = metricAxis.pos(c.metric);
    return p === null ? null : goal === "minimize" ? 1 - p : p;
  };
  return html`<svg class="parcoords" viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${`Parallel coordinates: ${axes.map((a) => a.name).join(", ")}`} data-testid="parcoords" data-lines=${children.length}>
    ${children.map((c) => {
      const points = axes.map((a, i) => [x(i), a.pos(i === axes.length - 1 ? c.metric : c.params?.[a.name])]).filter(([, p]) => p !== null);
      const q = quality(c);
      return html`<polyline class=${`line${c.best ? " best" : ""}`} fill="none" stroke=${q === null ? "#999" : colour(q)} stroke-width=${c.best ? 3 : 1.5}
        stroke-dasharray=${c.early_terminated || q === null ? "4 3" : ""} points=${points.map(([px, p]) => `${px},${y(p)}`).join(" ")}><title>${c.id}: ${metric} ${fmtValue(c.metric)}</title></polyline>`;
    })}
    ${axes.map((a, i) => html`<g class="axis">
      <line x1=${x(i)} x2=${x(i)} y1=${pad.t} y2=${H - pad.b} />
      <text x=${x(i)} y=${pad.t - 12} text-anchor="middle" class="axis-name">${a.name}</text>
      ${a.ticks.map(([p, t]) => html`<text x=${x(i) + 5} y=${y(p) + 4} class="tick">${t}</text>`)}
    </g>`)}
  </svg>`;
}

/** A child's short name: its number after the parent's id (HD_…_3 → child 3). */
const childLabel = (parentId, id) => (id.startsWith(`${parentId}_`) ? `child ${id.slice(parentId.length + 1)}` : id);

function ChildCharts({ parentId, children, metric, stamp }) {
  const [series, setSeries] = useState(null);
  const [error, setError] = useState(null);
  const ids = children.slice(0, CHART_CHILDREN).map((c) => c.id);
  useEffect(() => {
    const controller = new AbortController();
    post("/ui/metrics/compare", { runs: ids, name: metric, points: 500 }, { signal: controller.signal }).then(
      (data) => setSeries(data.series.filter((s) => s.x?.length).map((s) => ({ label: childLabel(parentId, s.run_id), x: s.x, y: s.y }))),
      (err) => err.name === "AbortError" || setError(err),
    );
    return () => controller.abort();
  }, [ids.join(","), metric, stamp]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!series) return html`<${Loading} />`;
  if (!series.length) return html`<p class="muted">No child has logged ${metric} yet.</p>`;
  return html`<${Chart} series=${series} testid="sweep-chart" />${children.length > CHART_CHILDREN ? html`<p class="muted">The best ${CHART_CHILDREN} children are drawn.</p>` : ""}`;
}

export function SweepView({ runId, detail }) {
  const { data, error, reload } = useApi((signal) => get(`/ui/runs/${encodeURIComponent(runId)}/sweep`, { signal }), [runId, detail.run.status, detail.children?.total]);
  // a live sweep: its children come and go without a status change of the parent; look again
  // every 5 s while it runs (one small read, and only then)
  const running = !isTerminal(detail.run.status);
  useEffect(() => {
    if (!running) return undefined;
    const timer = setInterval(reload, 5000);
    return () => clearInterval(timer);
  }, [running]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const { children, hyperparameters, primary_metric: metric, goal } = data;
  return html`<div class="sweep" data-testid="sweep">
    <p>Primary metric <b>${metric}</b> (${goal})${data.policy ? html` · early termination: <code>${data.policy}</code>` : ""} · ${children.length} children</p>
    <section><h2>Children</h2><div class="table-wrap"><table class="grid" data-testid="sweep-table">
      <thead><tr><th scope="col">#</th><th scope="col">Child</th><th scope="col">Status</th><th scope="col" class="num">${metric}</th>${hyperparameters.map((h) => html`<th scope="col">${h}</th>`)}<th scope="col">Early termination</th></tr></thead>
      <tbody>${children.map((c, i) => html`<tr class=${c.best ? "best" : ""} data-run-id=${c.id} data-early=${c.early_terminated ? "true" : "false"}>
        <td>${i + 1}${c.best ? html` <span class="badge status-completed" title="best">best</span>` : ""}</td>
        <td><${Link} href=${runHref(c.id)} title=${c.id}>${childLabel(runId, c.id)}</${Link}></td>
        <td><${StatusBadge} status=${c.status} /></td>
        <td class="num">${fmtValue(c.metric)}</td>
        ${hyperparameters.map((h) => html`<td>${fmtValue(c.params?.[h])}</td>`)}
        <td>${c.early_terminated ? html`<span class="badge status-canceled">stopped</span> ${c.reason || ""}` : ""}</td>
      </tr>`)}</tbody></table></div></section>
    <section><h2>${metric} over time</h2><${ChildCharts} parentId=${runId} children=${children} metric=${metric} stamp=${data} /></section>
    <section><h2>Hyperparameters against ${metric}</h2>
      ${children.length ? html`<${ParallelCoordinates} children=${children} hyperparameters=${hyperparameters} metric=${metric} goal=${goal} />` : html`<p class="muted">No children yet.</p>`}
      <p class="muted small">Lines coloured from blue (worst) to yellow (best); dashed: stopped early or no metric.</p></section>
  </div>`;
}
