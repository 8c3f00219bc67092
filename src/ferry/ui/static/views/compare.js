// Compare runs: one metric overlaid on one chart, parameters / tags / metrics side by side with
// the differing rows marked, and the code and environment-lock diffs between two of the runs.
import { html, useEffect, useState } from "../vendor/htm-preact-standalone.module.js";
import { get, post } from "../api.js";
import { Chart } from "../charts.js";
import { DiffView, ErrorBox, Link, Loading, NotFound, StatusBadge, fmtValue, runHref, useApi, useTitle } from "../common.js";

const label = (run) => `${run.display_name || run.id}${run.number != null ? ` #${run.number}` : ""}`;

function SideBySide({ title, values, differs, runs }) {
  const keys = Object.keys(values || {}).sort();
  const [onlyDiff, setOnlyDiff] = useState(false);
  const shown = onlyDiff ? keys.filter((k) => differs.includes(k)) : keys;
  return html`<section data-testid=${`compare-${title.toLowerCase()}`}>
    <div class="title-row"><h2>${title}</h2>${keys.length > 0 && html`<label class="small"><input type="checkbox" checked=${onlyDiff} onChange=${(e) => setOnlyDiff(e.target.checked)} /> only differences</label>`}</div>
    ${keys.length
      ? html`<div class="table-wrap"><table class="grid compare">
          <thead><tr><th scope="col">${title === "Parameters" ? "parameter" : title === "Tags" ? "tag" : "metric"}</th>${runs.map((r) => html`<th scope="col">${label(r)}</th>`)}</tr></thead>
          <tbody>${shown.map((k) => html`<tr class=${differs.includes(k) ? "differs" : ""} data-key=${k} data-differs=${differs.includes(k) ? "true" : "false"}>
            <th scope="row">${k}${differs.includes(k) ? html`<span class="sr-only"> (differs)</span>` : ""}</th>${values[k].map((v) => html`<td>${fmtValue(v)}</td>`)}</tr>`)}</tbody>
        </table></div>`
      : html`<p class="muted">None.</p>`}
  </section>`;
}

function OverlayChart({ runs, names }) {
  const [name, setName] = useState(names[0]);
  // start on a metric logged many times (a curve), found in the first run's page
  useEffect(() => {
    const controller = new AbortController();
    get(`/ui/runs/${encodeURIComponent(runs[0].id)}`, { signal: controller.signal }).then(
      (detail) => {
        const curve = (detail.metrics || []).find((m) => m.count > 1 && names.includes(m.name));
        if (curve) setName((current) => (current === names[0] ? curve.name : current));
      },
      () => {},
    );
    return () => controller.abort();
  }, [runs[0].id]);
  const [series, setSeries] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!name) return undefined;
    const controller = new AbortController();
    post("/ui/metrics/compare", { runs: runs.map((r) => r.id), name, points: 1000 }, { signal: controller.signal }).then(
      (data) => {
        const byId = Object.fromEntries(runs.map((r) => [r.id, r]));
        setSeries(data.series.filter((s) => s.x?.length).map((s) => ({ label: byId[s.run_id] ? label(byId[s.run_id]) : s.run_id, x: s.x, y: s.y })));
        setError(null);
      },
      (err) => err.name === "AbortError" || setError(err),
    );
    return () => controller.abort();
  }, [name, runs.map((r) => r.id).join(",")]);
  if (!names.length) return html`<p class="muted">These runs logged no metrics.</p>`;
  return html`<section data-testid="compare-chart">
    <div class="title-row"><h2>Metric</h2><label>Metric <select value=${name} data-testid="compare-metric" onChange=${(e) => setName(e.target.value)}>${names.map((n) => html`<option value=${n}>${n}</option>`)}</select></label></div>
    <${ErrorBox} error=${error} />
    ${series ? (series.length ? html`<${Chart} series=${series} />` : html`<p class="muted">No values of ${name} in these runs.</p>`) : html`<${Loading} />`}
  </section>`;
}

function Diffs({ runs }) {
  const [a, setA] = useState(runs[0].id);
  const [b, setB] = useState(runs[1]?.id || runs[0].id);
  const { data, error } = useApi((signal) => get(`/ui/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`, { signal }), [a, b]);
  const pick = (value, set, id) => html`<select id=${id} value=${value} onChange=${(e) => set(e.target.value)}>${runs.map((r) => html`<option value=${r.id}>${label(r)}</option>`)}</select>`;
  return html`<section data-testid="compare-diff">
    <div class="title-row"><h2>Code and environment</h2>
      <span><label for="diff-a">from</label> ${pick(a, setA, "diff-a")} <label for="diff-b">to</label> ${pick(b, setB, "diff-b")}</span></div>
    <${ErrorBox} error=${error} />
    ${data ? html`<h3>Code ${data.same_code ? html`<span class="muted small">(same snapshot)</span>` : ""}</h3>
        <div data-testid="code-diff"><${DiffView} text=${data.code} empty="Same code." /></div>
        <h3>Environment lock ${data.same_environment ? html`<span class="muted small">(same)</span>` : ""}</h3>
        <div data-testid="env-diff"><${DiffView} text=${data.environment} empty="Same environment lock." /></div>`
      : !error && html`<${Loading} />`}
  </section>`;
}

export function ComparePage({ ids }) {
  useTitle(`Compare ${ids.length} runs`);
  const { data, error } = useApi((signal) => get(`/ui/compare?runs=${ids.map(encodeURIComponent).join(",")}`, { signal }), [ids.join(",")]);
  if (ids.length < 1) return html`<${NotFound} message="Choose runs to compare: tick them in a runs table and press Compare." />`;
  if (error?.status === 404) return html`<${NotFound} message=${error.message} />`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const runs = data.runs;
  return html`<article class="compare-page" data-testid="compare">
    <h1>Compare ${runs.length} runs</h1>
    <ul class="run-chips">${runs.map((r) => html`<li><${Link} href=${runHref(r.id)}>${label(r)}</${Link}> <${StatusBadge} status=${r.status} /> <span class="muted small">${r.experiment}</span></li>`)}</ul>
    <${OverlayChart} runs=${runs} names=${Object.keys(data.metrics || {}).sort()} />
    <${SideBySide} title="Parameters" values=${data.params} differs=${data.differs?.params || []} runs=${runs} />
    <${SideBySide} title="Tags" values=${data.tags} differs=${data.differs?.tags || []} runs=${runs} />
    <${SideBySide} title="Metrics" values=${data.metrics} differs=${data.differs?.metrics || []} runs=${runs} />
    <${Diffs} runs=${runs} />
  </article>`;
}
