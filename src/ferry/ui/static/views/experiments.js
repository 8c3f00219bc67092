// The home page: every experiment, newest activity first, with run counts.
import { html, useState } from "../vendor/htm-preact-standalone.module.js";
import { get } from "../api.js";
import { ErrorBox, Link, Loading, experimentHref, fmtTime, useApi, useTitle } from "../common.js";

export function ExperimentsPage() {
  useTitle("Experiments");
  const { data, error, loading } = useApi((signal) => get("/ui/experiments", { signal }), []);
  const [find, setFind] = useState("");
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  const all = data.experiments || [];
  const needle = find.trim().toLowerCase();
  const experiments = needle ? all.filter((e) => e.name.toLowerCase().includes(needle)) : all;
  return html`<section data-testid="experiments">
    <div class="title-row"><h1>Experiments</h1>
      <span class="toolbar"><input type="search" aria-label="Find an experiment" placeholder="Find an experiment" data-testid="find-experiment" value=${find} onInput=${(e) => setFind(e.target.value)} />
      <${Link} href="/runs" class="button">All runs</${Link}></span></div>
    ${needle && !experiments.length ? html`<p class="muted">No experiment's name holds “${find}”.</p>` : ""}
    ${experiments.length
      ? html`<div class="table-wrap"><table class="grid" data-testid="experiments-table">
          <thead><tr><th scope="col">Name</th><th scope="col" class="num">Runs</th><th scope="col" class="num">Active</th><th scope="col">Last run</th></tr></thead>
          <tbody>${experiments.map((e) => html`<tr data-experiment=${e.name} class=${e.archived ? "archived" : ""}>
            <td><${Link} href=${experimentHref(e.name)}>${e.name}</${Link}>${e.archived ? html` <span class="badge">archived</span>` : ""}</td>
            <td class="num">${e.runs}</td>
            <td class="num">${e.active ? html`<span class="badge status-running">${e.active}</span>` : "0"}</td>
            <td>${fmtTime(e.last_run_time)}</td>
          </tr>`)}</tbody>
        </table></div>`
      : !all.length && html`<p class="muted">No experiments yet. Submit a run: <code>ferry submit train.py</code>.</p>`}
  </section>`;
}
