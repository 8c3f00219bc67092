// Tabs that show what a run used and made: outputs and logs, the snapshot, the environment and
// its lock, git state with the dirty diff, datasets and models.
import { html, useState } from "../vendor/htm-preact-standalone.module.js";
import { download, get } from "../api.js";
import { DiffView, ErrorBox, Json, Loading, fmtBytes, fmtValue, useApi } from "../common.js";

function FileView({ file }) {
  if (!file) return html`<p class="muted">Choose a file to view it.</p>`;
  if (file.error) return html`<${ErrorBox} error=${file.error} />`;
  if (file.loading) return html`<${Loading} />`;
  const name = file.name || file.path;
  return html`<div class="file-view" data-testid="file-view" data-name=${name}>
    <h3>${name} <span class="muted small">${fmtBytes(file.size)}</span></h3>
    ${file.binary || file.text == null ? html`<p class="muted">Binary file: download it to look inside.</p>` : html`<pre class="code">${file.text}</pre>`}
    ${file.truncated && html`<p class="muted">Shown up to the first ${fmtBytes(file.text?.length || 0)}; download for the whole file.</p>`}
  </div>`;
}

function FileList({ runId, title, files, open, onDownloadError }) {
  if (!files?.length) return html`<h3>${title}</h3><p class="muted">None.</p>`;
  return html`<h3>${title}</h3><table class="grid files" data-testid=${`files-${title.toLowerCase()}`}><tbody>
    ${files.map((f) => html`<tr>
      <td><button type="button" class="link" onClick=${() => open(f.name)}>${f.name}</button></td>
      <td class="num">${fmtBytes(f.size)}</td>
      <td><button type="button" class="small" aria-label=${`Download ${f.name}`} onClick=${() => download(runId, f.name).catch(onDownloadError)}>Download</button></td>
    </tr>`)}
  </tbody></table>`;
}

export function FilesTab({ runId, detail }) {
  const [file, setFile] = useState(null);
  const [error, setError] = useState(null);
  const open = async (name) => {
    setFile({ name, loading: true });
    try {
      setFile(await get(`/ui/runs/${encodeURIComponent(runId)}/file?name=${encodeURIComponent(name)}&limit=1048576`));
    } catch (err) {
      setFile({ name, error: err });
    }
  };
  const logNames = new Set((detail.logs || []).map((l) => l.name)); // listed once, under Logs
  return html`<div class="split" data-testid="files">
    <div class="side"><${ErrorBox} error=${error} />
      <${FileList} runId=${runId} title="Files" files=${(detail.files || []).filter((f) => !logNames.has(f.name))} open=${open} onDownloadError=${setError} />
      <${FileList} runId=${runId} title="Logs" files=${detail.logs} open=${open} onDownloadError=${setError} />
    </div>
    <div class="main"><${FileView} file=${file} /></div>
  </div>`;
}

/** Build a nested tree from flat paths: {dirs: {name: tree}, files: [{name, path, size}]}. */
function treeOf(files) {
  const root = { dirs: {}, files: [] };
  for (const f of files) {
    const parts = f.path.split("/");
    let node = root;
    for (const part of parts.slice(0, -1)) node = node.dirs[part] ||= { dirs: {}, files: [] };
    node.files.push({ ...f, name: parts[parts.length - 1] });
  }
  return root;
}

function Tree({ node, open, current, depth = 0 }) {
  return html`<ul class="tree" role=${depth ? "group" : "tree"}>
    ${Object.keys(node.dirs).sort().map((d) => html`<li><details open=${depth < 1}><summary>${d}/</summary><${Tree} node=${node.dirs[d]} open=${open} current=${current} depth=${depth + 1} /></details></li>`)}
    ${node.files.sort((a, b) => a.name.localeCompare(b.name)).map((f) => html`<li><button type="button" class=${`link${f.path === current ? " current" : ""}`} data-path=${f.path} onClick=${() => open(f.path)}>${f.name}</button> <span class="muted small">${fmtBytes(f.size)}</span></li>`)}
  </ul>`;
}

export function SnapshotTab({ runId, snapshot }) {
  const { data, error } = useApi((signal) => get(`/ui/runs/${encodeURIComponent(runId)}/snapshot`, { signal }), [runId]);
  const [file, setFile] = useState(null);
  if (!snapshot && !data) return html`<p class="muted">This run has no snapshot.</p>`;
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const open = async (path) => {
    setFile({ path, loading: true });
    try {
      setFile(await get(`/ui/runs/${encodeURIComponent(runId)}/snapshot/file?path=${encodeURIComponent(path)}`));
    } catch (err) {
      setFile({ path, error: err });
    }
  };
  return html`<div data-testid="snapshot">
    ${snapshot && html`<p class="muted">Snapshot <code>${snapshot.id}</code>: ${snapshot.files} files, ${fmtBytes(snapshot.bytes)}</p>`}
    <div class="split"><nav class="side" aria-label="Snapshot files"><${Tree} node=${treeOf(data.files || [])} open=${open} current=${file?.path} /></nav>
    <div class="main"><${FileView} file=${file} /></div></div>
  </div>`;
}

export function EnvironmentTab({ environment }) {
  if (!environment) return html`<p class="muted">No environment recorded for this run.</p>`;
  return html`<div data-testid="environment">
    <p><b>${environment.name}</b>${environment.version != null ? html` <span class="muted">version ${environment.version}</span>` : ""}</p>
    <h3>Lock</h3>${environment.lock ? html`<pre class="code" data-testid="lock">${environment.lock}</pre>` : html`<p class="muted">No lock file (the environment was not built by ferry, or not yet).</p>`}
    <h3>Definition</h3><${Json} value=${environment.definition} />
  </div>`;
}

export function GitTab({ git }) {
  if (!git) return html`<p class="muted">No git state recorded (the source folder was not a git repository).</p>`;
  return html`<div data-testid="git">
    <table class="kv"><tbody>
      <tr><th scope="row">Repository</th><td>${git.repository}</td></tr>
      <tr><th scope="row">Branch</th><td>${git.branch}</td></tr>
      <tr><th scope="row">Commit</th><td><code>${git.commit}</code></td></tr>
      <tr><th scope="row">Dirty</th><td>${git.dirty ? "yes: uncommitted changes below" : "no"}</td></tr>
    </tbody></table>
    ${git.dirty && html`<h3>Uncommitted changes</h3><${DiffView} text=${git.diff} empty="The diff was not recorded." />`}
  </div>`;
}

/** Rows of plain objects as a table: known keys first, then whatever else the server sent. */
function ObjectsTable({ rows, first, testid }) {
  const keys = [...new Set([...first.filter((k) => rows.some((r) => k in r)), ...rows.flatMap((r) => Object.keys(r))])];
  return html`<table class="grid" data-testid=${testid}><thead><tr>${keys.map((k) => html`<th scope="col">${k}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${keys.map((k) => html`<td>${k === "id" ? html`<code>${r[k]}</code>` : fmtValue(r[k])}</td>`)}</tr>`)}</tbody></table>`;
}

export function DatasetsTab({ datasets }) {
  const table = (title, rows) => html`<h3>${title}</h3>${rows?.length
    ? html`<${ObjectsTable} rows=${rows} first=${["name", "version", "id"]} testid=${`datasets-${title.toLowerCase()}`} />`
    : html`<p class="muted">None.</p>`}`;
  return html`<div data-testid="datasets">${table("Inputs", datasets.inputs)}${table("Outputs", datasets.outputs)}</div>`;
}

export function ModelsTab({ models }) {
  return html`<div data-testid="models"><${ObjectsTable} rows=${models} first=${["name", "version", "id"]} testid="models-table" /></div>`;
}
