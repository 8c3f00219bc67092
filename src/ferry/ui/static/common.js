// Small shared pieces: links that route without reloading, formatting, status badges, the
// not-found and error boxes, a unified-diff view.
import { html, useEffect, useState } from "./vendor/htm-preact-standalone.module.js";

export const TERMINAL = new Set(["Completed", "Failed", "Canceled"]);
export const isTerminal = (status) => TERMINAL.has(status);

// ---- routing ----------------------------------------------------------------------------------
const EMBED = new URLSearchParams(location.search).get("embed") === "1";
export const isEmbed = () => EMBED;

export function navigate(href, { replace = false } = {}) {
  const url = new URL(href, location.href);
  if (EMBED && !url.searchParams.has("embed")) url.searchParams.set("embed", "1");
  const target = url.pathname + url.search + url.hash;
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  window.dispatchEvent(new Event("ferry:navigate"));
}

/** Keep the embed flag on every in-app link. */
export function hrefOf(path) {
  if (!EMBED) return path;
  return path + (path.includes("?") ? "&" : "?") + "embed=1";
}

/** An <a> that routes in the page on a plain click and behaves as a link otherwise. */
export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a href=${hrefOf(href)} onClick=${onClick} ...${rest}>${children}</a>`;
}

export const runHref = (id, tab) => `/runs/${encodeURIComponent(id)}${tab ? `?tab=${tab}` : ""}`;
export const experimentHref = (name) => `/experiments/${encodeURIComponent(name)}`;

// ---- formatting -------------------------------------------------------------------------------
export function fmtTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} m ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

export function fmtValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(4) : String(+value.toPrecision(6));
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

// ---- pieces -----------------------------------------------------------------------------------
export function StatusBadge({ status }) {
  const cls = (status || "unknown").toLowerCase();
  return html`<span class="badge status-${cls}" data-status=${status}>${status || "?"}</span>`;
}

export function NotFound({ message }) {
  return html`<section class="notfound" data-testid="not-found">
    <h1>Not found</h1>
    <p>${message || "There is nothing at this address."}</p>
    <p><${Link} href="/">Back to the experiments</${Link}></p>
  </section>`;
}

/** The window's title for the page shown (history entries and tabs say what they are). */
export function useTitle(title) {
  useEffect(() => {
    document.title = title ? `${title} · ferry studio` : "ferry studio";
  }, [title]);
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error-box" role="alert">${error.message || String(error)}</div>`;
}

export const Loading = () => html`<p class="muted" aria-busy="true">Loading…</p>`;

/** A JSON call tied to a component's life: {data, error, loading, reload}. */
export function useApi(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => controller.signal.aborted || setState({ data, error: null, loading: false }),
      (error) => controller.signal.aborted || error.name === "AbortError" || setState({ data: null, error, loading: false }),
    );
    return () => controller.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

const DIFF_LINES = 20000;

/** A unified diff with added / removed / hunk lines coloured. */
export function DiffView({ text, empty = "No differences." }) {
  if (!text) return html`<p class="muted">${empty}</p>`;
  const lines = text.split("\n");
  const shown = lines.slice(0, DIFF_LINES);
  const cls = (line) =>
    line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index ")
      ? "d-file"
      : line.startsWith("@@")
        ? "d-hunk"
        : line.startsWith("+")
          ? "d-add"
          : line.startsWith("-")
            ? "d-del"
            : "d-ctx";
  return html`<div class="diff" data-testid="diff" data-lines=${lines.length}>
    ${shown.map((line) => html`<div class=${cls(line)}>${line || " "}</div>`)}
    ${lines.length > DIFF_LINES && html`<div class="muted">… ${lines.length - DIFF_LINES} more lines not shown</div>`}
  </div>`;
}

export function KeyValues({ data, empty = "None." }) {
  const entries = Object.entries(data || {});
  if (!entries.length) return html`<p class="muted">${empty}</p>`;
  return html`<table class="kv"><tbody>
    ${entries.map(([k, v]) => html`<tr><th scope="row">${k}</th><td>${fmtValue(v)}</td></tr>`)}
  </tbody></table>`;
}

export function Json({ value }) {
  return html`<pre class="code">${JSON.stringify(value, null, 2)}</pre>`;
}
