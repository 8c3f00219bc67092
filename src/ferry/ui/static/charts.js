// Charts over uPlot: line charts of one or many series (the server has already downsampled
// them), bar charts, and the reference's chart kinds. The wrapper carries data-* attributes
// (series count, points, last value) so a test or a person can read what was drawn.
import { html, useEffect, useRef } from "./vendor/htm-preact-standalone.module.js";
import uPlot from "./vendor/uPlot.esm.js";

export const PALETTE = ["#2f6fdf", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d", "#862e9c", "#495057"];

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/**
 * A uPlot chart. series = [{label, x: [...], y: [...]}]; series with different x are joined
 * (uPlot.join) with gaps spanned. bars = true draws bars instead of lines.
 */
export function Chart({ series, xLabel = "step", height = 260, bars = false, testid = "chart" }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !series.length) return undefined;
    const tables = series.map((s) => [s.x.map(Number), s.y.map((v) => (v === null || v === undefined ? null : Number(v)))]);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    const axisColour = cssVar("--fg-muted", "#666");
    const gridColour = cssVar("--grid", "#8884");
    const integers = series.every((s) => s.x.every(Number.isInteger));
    const axis = { stroke: axisColour, grid: { stroke: gridColour, width: 1 }, ticks: { stroke: gridColour } };
    const opts = {
      width: Math.max(200, el.clientWidth),
      height,
      scales: bars
        ? {
            // bars: the y axis from 0, and half a bar of room at each end of x
            x: { time: false, range: (u, lo, hi) => { const half = (hi - lo) / Math.max(1, data[0].length - 1) / 2 || 0.5; return [lo - half, hi + half]; } },
            y: { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.08 : 1] },
          }
        : { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      axes: [{ ...axis, label: xLabel, ...(integers ? { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7] } : {}) }, { ...axis, size: 60 }],
      series: [
        { label: xLabel },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: PALETTE[i % PALETTE.length],
          fill: bars ? `${PALETTE[i % PALETTE.length]}88` : undefined,
          width: 1.5,
          spanGaps: true,
          points: { show: !bars && s.x.length < 40 },
          paths: bars ? uPlot.paths.bars({ size: [0.8, 60] }) : undefined,
        })),
      ],
    };
    const plot = new uPlot(opts, data, el);
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [series, height, bars, xLabel]);
  const points = series.reduce((n, s) => n + s.x.length, 0);
  const first = series[0];
  const last = first && first.y.length ? first.y[first.y.length - 1] : "";
  return html`<div class="chart" ref=${box} data-testid=${testid} data-series=${series.length} data-points=${points}
    data-last=${last} data-labels=${series.map((s) => s.label).join("\u001f")}></div>`;
}

/** The reference's confusion matrix as a heat-map table. */
export function ConfusionMatrix({ value }) {
  const data = value?.data || value || {};
  const labels = data.class_labels || [];
  const matrix = data.matrix || [];
  const max = Math.max(1, ...matrix.flat().map(Number).filter(Number.isFinite));
  return html`<table class="heatmap" data-testid="confusion-matrix">
    <thead><tr><th scope="col">actual \\ predicted</th>${labels.map((l) => html`<th scope="col">${l}</th>`)}</tr></thead>
    <tbody>${matrix.map(
      (row, i) => html`<tr><th scope="row">${labels[i] ?? i}</th>${row.map((v) => {
        const share = Number(v) / max;
        return html`<td style=${`background: rgba(47,111,223,${(0.08 + 0.85 * share).toFixed(3)}); color: ${share > 0.55 ? "#fff" : "inherit"}`}>${v}</td>`;
      })}</tr>`,
    )}</tbody>
  </table>`;
}

const mids = (edges) => edges.slice(0, -1).map((e, i) => (Number(e) + Number(edges[i + 1])) / 2);

/** accuracy_table / residuals / predictions as charts; anything else as JSON. */
export function ReferenceChart({ chartType, value }) {
  const data = value?.data || {};
  if (chartType === "confusion_matrix") return html`<${ConfusionMatrix} value=${value} />`;
  if (chartType === "residuals" && data.bin_edges && data.bin_counts) {
    return html`<${Chart} bars xLabel="residual" series=${[{ label: "count", x: mids(data.bin_edges), y: data.bin_counts }]} />`;
  }
  if (chartType === "predictions" && data.bin_averages) {
    const x = data.bin_edges ? mids(data.bin_edges) : data.bin_averages.map((_, i) => i);
    return html`<${Chart} xLabel="true value (bin)" series=${[{ label: "mean prediction", x, y: data.bin_averages }]} />`;
  }
  if (chartType === "accuracy_table" && data.probability_tables && data.probability_thresholds) {
    // each class's table: [TP, FP, TN, FN] per threshold → recall (TPR) against the threshold
    const labels = data.class_labels || data.probability_tables.map((_, i) => `class ${i}`);
    const series = data.probability_tables.map((table, c) => ({
      label: `recall ${labels[c]}`,
      x: data.probability_thresholds,
      y: table.map(([tp, , , fn]) => (tp + fn ? tp / (tp + fn) : null)),
    }));
    return html`<${Chart} xLabel="probability threshold" series=${series} />`;
  }
  return html`<pre class="code">${JSON.stringify(value, null, 2)}</pre>`;
}
