// What a run's context menu does: details, metrics, outputs, the snapshot against the working
// folder (or another run) in VS Code's diff editor, restore, tags. Each asks the CLI with --json.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { Ferry } from "./cli";
import { RunSummary, tagChanges, tagsText } from "./format";

/** Read-only documents: a run's details (ferry-run:/RUN.json) and the empty side of a diff. */
export class RunDocuments implements vscode.TextDocumentContentProvider {
  static readonly scheme = "ferry-run";
  private readonly texts = new Map<string, string>();

  set(uri: vscode.Uri, text: string): void {
    this.texts.set(uri.toString(), text);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? "";
  }
}

/** Where snapshots are restored for diffs (one folder per run, reused). */
export function snapshotCache(): string {
  return path.join(os.tmpdir(), `ferry-vscode-${process.getuid ? process.getuid() : "user"}`, "snapshots");
}

async function restored(ferry: Ferry, runId: string): Promise<string> {
  const dest = path.join(snapshotCache(), runId.replace(/[^\w.-]/g, "_"));
  if (fs.existsSync(path.join(dest, ".ferry-complete"))) {
    return dest;
  }
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  await ferry.json(["runs", "restore", runId, "-o", dest]);
  fs.writeFileSync(path.join(dest, ".ferry-complete"), "");
  return dest;
}

export async function showDetails(ferry: Ferry, docs: RunDocuments, runId: string): Promise<void> {
  const details = await ferry.json<Record<string, unknown>>(["runs", "show", runId]);
  const uri = vscode.Uri.from({ scheme: RunDocuments.scheme, path: `/${runId}.json` });
  docs.set(uri, JSON.stringify(details, null, 2));
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.languages.setTextDocumentLanguage(doc, "json");
  await vscode.window.showTextDocument(doc, { preview: true });
}

/** Metrics in a webview: the last value of each, and a line chart of each series. */
export async function showMetrics(ferry: Ferry, runId: string, uiUrl: string): Promise<void> {
  const details = await ferry.json<{ portalUrl?: string | null }>(["runs", "show", runId]);
  const page = details.portalUrl || (uiUrl ? `${uiUrl.replace(/\/$/, "")}/#/runs/${encodeURIComponent(runId)}` : "");
  if (page) {
    await vscode.env.openExternal(vscode.Uri.parse(page));
    return;
  }
  const metrics = await ferry.json<Record<string, unknown>>(["runs", "metrics", runId]);
  const panel = vscode.window.createWebviewPanel("ferry.metrics", `Metrics: ${runId}`, vscode.ViewColumn.Active, {
    enableScripts: false,
  });
  panel.webview.html = metricsHtml(runId, metrics);
}

export function metricsHtml(runId: string, metrics: Record<string, unknown>): string {
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] ?? c);
  const rows = Object.entries(metrics).map(([name, value]) => {
    const series = Array.isArray(value) ? value.filter((v): v is number => typeof v === "number") : [];
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    let chart = "";
    if (series.length > 1) {
      const lo = Math.min(...series);
      const hi = Math.max(...series);
      const points = series
        .map((v, i) => `${(i / (series.length - 1)) * 300},${hi === lo ? 30 : 58 - ((v - lo) / (hi - lo)) * 56}`)
        .join(" ");
      chart = `<svg width="300" height="60"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${points}"/></svg>`;
    }
    return `<tr><td>${esc(name)}</td><td>${esc(JSON.stringify(last))}</td><td>${chart}</td></tr>`;
  });
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';"></head>
<body><h2>${esc(runId)}</h2><table>${rows.join("") || "<tr><td>no metrics logged</td></tr>"}</table></body></html>`;
}

/** The run's snapshot against the working folder, in the diff editor (one file) or the
 * multi-file changes editor (several). */
export async function compareWithWorkingFolder(ferry: Ferry, run: RunSummary | string, folder: string): Promise<void> {
  const runId = typeof run === "string" ? run : run.runId;
  const changes = await ferry.json<{ added: string[]; removed: string[]; changed: string[] }>([
    "runs",
    "compare",
    runId,
    "--folder",
    folder,
  ]);
  const total = changes.added.length + changes.removed.length + changes.changed.length;
  if (total === 0) {
    void vscode.window.showInformationMessage(`ferry: ${path.basename(folder)} holds the snapshot of ${runId} exactly`);
    return;
  }
  const snap = await restored(ferry, runId);
  const empty = vscode.Uri.from({ scheme: RunDocuments.scheme, path: "/empty" });
  const triples: [vscode.Uri, vscode.Uri, vscode.Uri][] = [];
  for (const name of changes.changed) {
    const right = vscode.Uri.file(path.join(folder, name));
    triples.push([right, vscode.Uri.file(path.join(snap, name)), right]);
  }
  for (const name of changes.added) {
    const right = vscode.Uri.file(path.join(folder, name));
    triples.push([right, empty, right]);
  }
  for (const name of changes.removed) {
    triples.push([vscode.Uri.file(path.join(snap, name)), vscode.Uri.file(path.join(snap, name)), empty]);
  }
  if (triples.length === 1) {
    const [, left, right] = triples[0];
    const name = [...changes.changed, ...changes.added, ...changes.removed][0];
    await vscode.commands.executeCommand("vscode.diff", left, right, `${name} (${runId} ↔ working folder)`);
    return;
  }
  await vscode.commands.executeCommand("vscode.changes", `${runId} ↔ working folder`, triples);
}

/** Two runs' code, in the changes editor. */
export async function compareRuns(ferry: Ferry, a: string, b: string): Promise<void> {
  const changes = await ferry.json<{ added: string[]; removed: string[]; changed: string[] }>(["runs", "diff", a, b]);
  const names = [...changes.changed, ...changes.added, ...changes.removed];
  if (!names.length) {
    void vscode.window.showInformationMessage(`ferry: ${a} and ${b} ran the same code`);
    return;
  }
  const [left, right] = await Promise.all([restored(ferry, a), restored(ferry, b)]);
  const empty = vscode.Uri.from({ scheme: RunDocuments.scheme, path: "/empty" });
  const triples = names.map((name): [vscode.Uri, vscode.Uri, vscode.Uri] => {
    const inA = !changes.added.includes(name); // added: only in b; removed: only in a
    const inB = !changes.removed.includes(name);
    const a = inA ? vscode.Uri.file(path.join(left, name)) : empty;
    const b = inB ? vscode.Uri.file(path.join(right, name)) : empty;
    return [inB ? b : a, a, b];
  });
  await vscode.commands.executeCommand("vscode.changes", `${a} ↔ ${b}`, triples);
}

export async function restoreSnapshot(ferry: Ferry, runId: string, base: string): Promise<void> {
  const target = await vscode.window.showInputBox({
    title: `ferry: restore the snapshot of ${runId}`,
    prompt: "A new or empty folder",
    value: path.join(base, `${runId}_snapshot`),
    ignoreFocusOut: true,
  });
  if (!target) {
    return;
  }
  const done = await ferry.json<{ path: string }>(["runs", "restore", runId, "-o", target]);
  const choice = await vscode.window.showInformationMessage(`ferry: snapshot of ${runId} restored into ${done.path}`, "Reveal");
  if (choice === "Reveal") {
    await vscode.commands.executeCommand("revealInExplorer", vscode.Uri.file(done.path));
  }
}

export async function downloadOutputs(ferry: Ferry, runId: string, base: string): Promise<void> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    defaultUri: vscode.Uri.file(base),
    openLabel: "Download here",
  });
  if (!picked?.length) {
    return;
  }
  const out = await ferry.text(["runs", "download", runId, "-o", picked[0].fsPath, "--prefix", "outputs/"]);
  const count = out.split("\n").filter((l) => l.trim()).length;
  void vscode.window.showInformationMessage(`ferry: ${count} file(s) of ${runId} downloaded into ${picked[0].fsPath}`);
}

export async function editTags(ferry: Ferry, runId: string, before: Record<string, string | null>): Promise<void> {
  const typed = await vscode.window.showInputBox({
    title: `ferry: tags of ${runId}`,
    prompt: "KEY=VALUE or KEY, separated by commas (remove one by deleting it)",
    value: tagsText(before),
    ignoreFocusOut: true,
  });
  if (typed === undefined) {
    return;
  }
  const { set, remove } = tagChanges(before, typed);
  if (!set.length && !remove.length) {
    return;
  }
  await ferry.json(["runs", "tag", runId, ...set, ...remove.flatMap((k) => ["--remove", k])]);
}
