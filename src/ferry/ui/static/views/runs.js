// The runs table: one experiment's runs, every experiment's, or a run's children. Paging, sorting
// and filtering (MLflow's search syntax) happen on the server; a page holds 50 rows (10–200) and keeps
// their statuses live (events of the few running rows, or a 5 s re-query when many are running).
import { html, useEffect, useMemo, useRef, useState } from "../vendor/htm-preact-standalone.module.js";
import { followRun, post } from "../api.js";
import { ErrorBox, Link, NotFound, StatusBadge, experimentHref, fmtDuration, fmtTime, fmtValue, isTerminal, navigate, runHref } from "../common.js";

const PAGE_SIZES = [10, 25, 50, 100, 200];
const DEFAULT_ORDER = { sort: "attributes.created", dir: "DESC" };
const PAGE_KEY = "ferry.pageSize";
const LIVE_STREAMS = 3; // browsers allow ~6 connections per host: keep room for the rest
const REQUERY_MS = 5000;

const quote = (name) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `\`${name.replace(/`/g, "")}\``);

function baseColumns(showExperiment) {
  const cols = [
    { key: "run", label: "Run", sort: "attributes.run_name", first: "ASC", cell: (r) => html`<${Link} href=${runHref(r.id)}>${r.display_name || r.id}</${Link}>${r.number != null ? html` <span class="muted">#${r.number}</span>` : ""}` },
    { key: "status", label: "Status", sort: "attributes.status", first: "ASC", cell: (r) => html`<${StatusBadge} status=${r.status} />` },
    { key: "created", label: "Created", sort: "attributes.created", first: "DESC", cell: (r) => fmtTime(r.created_at) },
    { key: "start_time", label: "Started", sort: "attributes.start_time", first: "DESC", cell: (r) => fmtTime(r.start_time) },
    { key: "duration", label: "Duration", sort: "attributes.duration", first: "DESC", cell: (r) => fmtDuration(r.duration) },
    { key: "target", label: "Target", sort: "attributes.target", first: "ASC", cell: (r) => r.target },
    { key: "run_type", label: "Type", sort: "attributes.run_type", first: "ASC", cell: (r) => r.run_type },
    { key: "children", label: "Children", cell: (r) => (r.children ? r.children : "") },
  ];
  if (showExperiment) cols.splice(1, 0, { key: "experiment", label: "Experiment", sort: "attributes.experiment", first: "ASC", cell: (r) => html`<${Link} href=${experimentHref(r.experiment)}>${r.experiment}</${Link}>` });
  return cols;
}

function dynamicColumns(columns) {
  const out = [];
  for (const [group, field] of [["metrics", "metrics"], ["params", "params"], ["tags", "tags"]]) {
    for (const name of columns?.[group] || []) {
      out.push({ key: `${group}.${name}`, label: name, group, sort: `${group}.${quote(name)}`, first: group === "metrics" ? "DESC" : "ASC", numeric: group === "metrics", cell: (r) => fmtValue(r[field]?.[name]) });
    }
  }
  return out;
}

function defaultShown(all, showExperiment) {
  const keys = ["run", "status", "created", "duration", "target"];
  if (showExperiment) keys.splice(1, 0, "experiment");
  let metrics = 0;
  let params = 0;
  let tags = 0;
  for (const c of all) {
    if (c.group === "metrics" && metrics++ < 5) keys.push(c.key);
    if (c.group === "params" && params++ < 3) keys.push(c.key);
    if (c.group === "tags" && tags++ < 3) keys.push(c.key);
  }
  return keys;
}

function ColumnChooser({ all, shown, setShown }) {
  const groups = [["Run", all.filter((c) => !c.group)], ["Metrics", all.filter((c) => c.group === "metrics")], ["Parameters", all.filter((c) => c.group === "params")], ["Tags", all.filter((c) => c.group === "tags")]];
  const toggle = (key) => setShown(shown.includes(key) ? shown.filter((k) => k !== key) : [...shown, key]);
  const onKey = (event) => {
    if (event.key !== "Escape") return; // Escape closes the chooser, focus back on its button
    const details = event.currentTarget;
    details.open = false;
    details.querySelector("summary")?.focus();
  };
  return html`<details class="chooser" data-testid="column-chooser" onKeyDown=${onKey}>
    <summary>Columns</summary>
    <div class="chooser-body">
      ${groups.filter(([, cols]) => cols.length).map(([title, cols]) => html`<fieldset><legend>${title}</legend>
        ${cols.map((c) => html`<label><input type="checkbox" checked=${shown.includes(c.key)} onChange=${() => toggle(c.key)} /> ${c.label}</label>`)}
      </fieldset>`)}
      <button type="button" onClick=${() => setShown(null)}>Reset</button>
    </div>
  </details>`;
}

/** The runs table. experiment: a name or null (all); parent: a run id to list its children. */
export function RunsTable({ experiment = null, parent = null, title = null }) {
  const storeKey = `ferry.columns.${parent ? "children" : experiment ?? "*"}`;
  // the filter, the sort and the page live in the address (a link or a reload keeps them)
  const inUrl = !parent;
  const initial = inUrl ? new URLSearchParams(location.search) : new URLSearchParams();
  const [filterText, setFilterText] = useState(initial.get("filter") || "");
  const [filter, setFilter] = useState(initial.get("filter") || "");
  const [order, setOrder] = useState(() => {
    const m = /^(.+) (ASC|DESC)$/.exec(initial.get("sort") || "");
    return m ? { sort: m[1], dir: m[2] } : DEFAULT_ORDER;
  });
  const [offset, setOffset] = useState(Math.max(0, Number(initial.get("offset")) || 0));
  useEffect(() => {
    if (!inUrl) return;
    const url = new URL(location.href);
    const put = (key, value) => (value ? url.searchParams.set(key, value) : url.searchParams.delete(key));
    put("filter", filter);
    put("sort", order.sort === DEFAULT_ORDER.sort && order.dir === DEFAULT_ORDER.dir ? "" : `${order.sort} ${order.dir}`);
    put("offset", offset ? String(offset) : "");
    if (url.search !== location.search) history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }, [filter, order.sort, order.dir, offset]);
  const [limit, setLimit] = useState(() => (PAGE_SIZES.includes(Number(localStorage.getItem(PAGE_KEY))) ? Number(localStorage.getItem(PAGE_KEY)) : 50));
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [filterError, setFilterError] = useState(null);
  const [notFound, setNotFound] = useState(null);
  const [tick, setTick] = useState(0);
  const [selected, setSelected] = useState([]);
  const [stored, setStored] = useState(() => JSON.parse(localStorage.getItem(storeKey) || "null"));
  const knownColumns = useRef(null);

  useEffect(() => {
    const controller = new AbortController();
    const body = { experiment, filter, order_by: [`${order.sort} ${order.dir}`], offset, limit, parent, top_level_only: !parent };
    post("/ui/runs", body, { signal: controller.signal }).then(
      (data) => {
        setPage(data);
        setError(null);
        setFilterError(null);
        knownColumns.current = data.columns;
      },
      (err) => {
        if (err.name === "AbortError") return;
        if (err.status === 404) setNotFound(err.message);
        else if (err.status === 400) setFilterError(err.message);
        else setError(err);
      },
    );
    return () => controller.abort();
  }, [experiment, parent, filter, order.sort, order.dir, offset, limit, tick]);

  // live statuses: follow the first few running rows' events; re-query every 5 s if more run
  const running = (page?.runs || []).filter((r) => !isTerminal(r.status)).map((r) => r.id);
  const runningKey = running.join(",");
  useEffect(() => {
    if (!running.length) return undefined;
    const controller = new AbortController();
    for (const id of running.slice(0, LIVE_STREAMS)) {
      followRun(id, {
        signal: controller.signal,
        handlers: {
          status: (row) => {
            setPage((p) => (p ? { ...p, runs: p.runs.map((r) => (r.id === row.id ? { ...r, ...row } : r)) } : p));
            if (isTerminal(row.status)) setTick((t) => t + 1);
          },
        },
      }).catch(() => {});
    }
    const timer = running.length > LIVE_STREAMS ? setInterval(() => setTick((t) => t + 1), REQUERY_MS) : null;
    return () => {
      controller.abort();
      if (timer) clearInterval(timer);
    };
  }, [runningKey]);

  const all = useMemo(() => [...baseColumns(!experiment && !parent), ...dynamicColumns(page?.columns)], [experiment, parent, page?.columns]);
  const shownKeys = stored || defaultShown(all, !experiment && !parent);
  const visible = all.filter((c) => shownKeys.includes(c.key));
  const setShown = (keys) => {
    if (keys) localStorage.setItem(storeKey, JSON.stringify(keys));
    else localStorage.removeItem(storeKey);
    setStored(keys);
  };

  if (notFound) return html`<${NotFound} message=${notFound} />`;

  const sortBy = (col) => {
    setOffset(0);
    setOrder((o) => (o.sort === col.sort ? { sort: col.sort, dir: o.dir === "ASC" ? "DESC" : "ASC" } : { sort: col.sort, dir: col.first }));
  };
  const applyFilter = (event) => {
    event.preventDefault();
    setOffset(0);
    setFilter(filterText.trim());
    setTick((t) => t + 1);
  };
  const toggleRow = (id) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));
  const runs = page?.runs || [];
  const total = page?.total ?? 0;

  return html`<section class="runs" data-testid="runs">
    ${title && html`<h2>${title}</h2>`}
    <div class="toolbar">
      <form class="filter" onSubmit=${applyFilter} role="search">
        <label for="run-filter" class="sr-only">Filter runs</label>
        <input id="run-filter" data-testid="filter" type="search" spellcheck="false" autocomplete="off" value=${filterText}
          placeholder='Filter: metrics.acc > 0.9 and tags.team = "a" and status = "Completed"  (Enter applies)'
          aria-invalid=${filterError ? "true" : "false"} aria-describedby="filter-error"
          onInput=${(e) => setFilterText(e.target.value)} />
      </form>
      <${ColumnChooser} all=${all} shown=${shownKeys} setShown=${setShown} />
      <button type="button" class="primary" data-testid="compare" disabled=${selected.length < 2}
        onClick=${() => navigate(`/compare?runs=${selected.map(encodeURIComponent).join(",")}`)}>Compare${selected.length ? ` (${selected.length})` : ""}</button>
    </div>
    <div id="filter-error" class="filter-error" role="alert" data-testid="filter-error">${filterError || ""}</div>
    <${ErrorBox} error=${error} />
    <div class="table-wrap">
      <table class="grid" data-testid="runs-table" data-total=${total} data-order=${`${order.sort} ${order.dir}`}>
        <thead><tr>
          <th scope="col" class="sel"><span class="sr-only">Select</span></th>
          ${visible.map((c) => {
            const active = c.sort && c.sort === order.sort;
            const aria = active ? (order.dir === "ASC" ? "ascending" : "descending") : "none";
            return html`<th scope="col" aria-sort=${aria} class=${c.numeric ? "num" : ""} title=${c.group ? `${c.group}.${c.label}` : c.label}>
              ${c.sort
                ? html`<button type="button" class="sort" data-sort=${c.sort} onClick=${() => sortBy(c)}>${c.group === "tags" || c.group === "params" ? html`<span class="col-kind">${c.group === "tags" ? "tag" : "param"}</span> ` : ""}${c.label}<span class="arrow" aria-hidden="true">${active ? (order.dir === "ASC" ? " ▲" : " ▼") : ""}</span></button>`
                : c.label}
            </th>`;
          })}
        </tr></thead>
        <tbody>
          ${runs.map((r) => html`<tr data-run-id=${r.id} data-status=${r.status} class=${selected.includes(r.id) ? "selected" : ""}>
            <td class="sel"><input type="checkbox" aria-label=${`Select ${r.display_name || r.id}`} checked=${selected.includes(r.id)} onChange=${() => toggleRow(r.id)} /></td>
            ${visible.map((c) => html`<td class=${c.numeric ? "num" : ""}>${c.cell(r)}</td>`)}
          </tr>`)}
          ${page && !runs.length && html`<tr><td colspan=${visible.length + 1} class="muted">No runs${filter ? " match this filter" : ""}.</td></tr>`}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="Pages">
      <label>Rows <select data-testid="page-size" value=${limit} onChange=${(e) => {
        const size = Number(e.target.value);
        localStorage.setItem(PAGE_KEY, String(size));
        setLimit(size);
        setOffset(0);
      }}>${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}</select></label>
      <button type="button" data-testid="previous" disabled=${offset === 0} onClick=${() => setOffset(Math.max(0, offset - limit))}>‹ Previous</button>
      <span data-testid="page-info">${total ? `${offset + 1}–${offset + runs.length} of ${total}` : page ? "0 runs" : "Loading…"}</span>
      <button type="button" data-testid="next" disabled=${!page || page.next_offset == null} onClick=${() => setOffset(page.next_offset)}>Next ›</button>
    </nav>
  </section>`;
}
