// ferry studio: the single-page app. Routes on location.pathname (docs/ui-api.md: every page path
// answers index.html), keeps the token, shows a banner while the server is unreachable.
import { html, render, useEffect, useState } from "./vendor/htm-preact-standalone.module.js";
import { get, getToken, onConnectivity, setToken, setUnauthorizedHandler, takeTokenFromUrl } from "./api.js";
import { Link, NotFound, isEmbed, navigate, useTitle } from "./common.js";
import { ComparePage } from "./views/compare.js";
import { ExperimentsPage } from "./views/experiments.js";
import { RunPage } from "./views/run.js";
import { RunsTable } from "./views/runs.js";
import { SignInPage } from "./views/signin.js";

takeTokenFromUrl();
setUnauthorizedHandler(() => {
  if (location.pathname === "/signin") return;
  setToken("");
  navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
});

function useLocation() {
  const [loc, setLoc] = useState(() => ({ path: location.pathname, search: location.search }));
  useEffect(() => {
    const update = () => setLoc({ path: location.pathname, search: location.search });
    window.addEventListener("popstate", update);
    window.addEventListener("ferry:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("ferry:navigate", update);
    };
  }, []);
  return loc;
}

function Header() {
  const [info, setInfo] = useState(null);
  useEffect(() => {
    get("/ui/info").then(setInfo, () => {});
  }, [getToken()]);
  return html`<header class="top">
    <${Link} href="/" class="brand">ferry studio</${Link}>
    <nav aria-label="Main"><${Link} href="/">Experiments</${Link}><${Link} href="/runs">All runs</${Link}></nav>
    <span class="who" data-testid="who">${info ? html`<span title="workspace">${info.workspace}</span> · <span title="user">${info.user}</span>${info.mode === "server" ? html` <button type="button" class="link" onClick=${() => { setToken(""); navigate("/signin"); }}>Sign out</button>` : ""}` : ""}</span>
  </header>`;
}

function Banner() {
  const [down, setDown] = useState(false);
  useEffect(() => onConnectivity(setDown), []);
  if (!down) return null;
  return html`<div class="banner" role="status" data-testid="unreachable">Server unreachable — reconnecting…</div>`;
}

function Titled({ title, children }) {
  useTitle(title);
  return children;
}

function page(path, search) {
  const params = new URLSearchParams(search);
  if (path === "/" || path === "") return html`<${ExperimentsPage} />`;
  if (path === "/signin") return html`<${SignInPage} />`;
  if (path === "/runs" || path === "/runs/") return html`<${Titled} title="All runs"><h1>All runs</h1><${RunsTable} key="all" /></${Titled}>`;
  let m = path.match(/^\/experiments\/([^/]+)\/?$/);
  if (m) {
    const name = decodeURIComponent(m[1]);
    return html`<${Titled} title=${name}><h1><span class="muted">Experiment</span> ${name}</h1><${RunsTable} key=${name} experiment=${name} /></${Titled}>`;
  }
  m = path.match(/^\/runs\/([^/]+)\/?$/);
  if (m) return html`<${RunPage} key=${m[1]} runId=${decodeURIComponent(m[1])} tab=${params.get("tab")} />`;
  if (path === "/compare") return html`<${ComparePage} ids=${(params.get("runs") || "").split(",").filter(Boolean)} />`;
  return html`<${Titled} title="Not found"><${NotFound} message=${`No page at ${path}.`} /></${Titled}>`;
}

function App() {
  const { path, search } = useLocation();
  useEffect(() => {
    if (!getToken() && path !== "/signin") navigate(`/signin?next=${encodeURIComponent(path + search)}`, { replace: true });
  }, [path]);
  useEffect(() => window.scrollTo(0, 0), [path]);
  const embed = isEmbed();
  return html`${!embed && html`<${Header} />`}<${Banner} /><main class=${embed ? "embed" : ""}>${page(path, search)}</main>`;
}

render(html`<${App} />`, document.getElementById("app"));
