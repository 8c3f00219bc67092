// The home page: every experiment, newest activity first, with run counts.
import { html } from "../vendor/htm-preact-standalone.module.js";
import { get } from "../api.js";
import { ErrorBox, Link, Loading, experimentHref, fmtTime, useApi, useTitle } from "../common.js";

export function ExperimentsPage() {
  useTitle("Experiments");
  const { data, error, loading } = useApi((signal) => get("/ui/experiments", { signal }), []);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (loading && !data) return html`<${Loading} />`;
  const experiments = data.experiments || [];
  return html`<section data-testid="experiments">
    <div class="title-row"><h1>Experiments</h1><${Link} href="/runs" class="button">All runs</${Link}></div>
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
      : html`<p class="muted">No experiments yet. Submit a run: <code>ferry submit train.py</code>.</p>`}
  </section>`;
}
