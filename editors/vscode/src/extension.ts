// ferry for VS Code: submit the open script, follow it live, browse and compare runs.
// Every answer comes from the `ferry` CLI (--json), found through the Python extension's
// interpreter, else the setting ferry.path, else PATH.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import * as actions from "./actions";
import { Ferry, FerryError, Located, findFerry, setTrace, traceStep } from "./cli";
import { Follower, LogDocuments, showError } from "./follow";
import { RunSummary } from "./format";
import { LAST_JOB_KEY, askChoices, folderOf, saveFirst, writeJobFile } from "./submit";
import { CliSource, pythonInterpreter } from "./source";
import { Node, RunsTree, WorkspaceInfo } from "./tree";

let located: Located | null = null;
let interpreter: string | null = null;
let tried: string[] = [];

function settings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration("ferry");
}

function rootFolder(): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
}

function ferryFor(folder: string = rootFolder()): Ferry | null {
  return located ? new Ferry(located, folder, settings().get<string>("workspace", "")) : null;
}

async function locate(tree: RunsTree): Promise<void> {
  interpreter = await pythonInterpreter();
  const result = findFerry({
    interpreter,
    settingPath: settings().get<string>("path", ""),
    envPath: process.env.PATH ?? "",
  });
  located = result.found;
  tried = result.tried;
  if (!located) {
    tree.setMessage({
      kind: "message",
      label: "ferry is not installed: click to install it",
      command: { command: "ferry.install", title: "Install ferry" },
    });
    return;
  }
  tree.setMessage(null);
}

/** Tell, once, that ferry is missing or too old, with a button that installs it. */
async function reportMissing(tooOld = false): Promise<void> {
  const python = interpreter ?? "python3";
  const what = tooOld
    ? `ferry at ${located?.command} is too old for this extension`
    : `no ferry command found (tried: ${tried.join("; ")})`;
  const choice = await vscode.window.showErrorMessage(
    `ferry: ${what}. Install it into ${python} with: ${python} -m pip install -U ferry`,
    "Install ferry",
  );
  if (choice === "Install ferry") {
    await vscode.commands.executeCommand("ferry.install");
  }
}

async function requireFerry(folder?: string): Promise<Ferry | null> {
  const ferry = ferryFor(folder);
  if (!ferry) {
    await reportMissing();
  }
  return ferry;
}

/** A run from a command's argument: a tree node, a run id, or (none) a pick. */
async function runOf(arg: unknown, tree: RunsTree, follower: Follower, liveOnly = false): Promise<RunSummary | string | null> {
  if (typeof arg === "string") {
    return arg;
  }
  if (arg && typeof arg === "object" && (arg as Node).kind === "run") {
    return (arg as Extract<Node, { kind: "run" }>).run;
  }
  if (liveOnly && follower.activeRunId) {
    return follower.activeRunId;
  }
  const runs = tree.loadedRuns().filter((r) => !liveOnly || !["Completed", "Failed", "Canceled"].includes(r.status));
  const typed = await vscode.window.showQuickPick(
    [
      ...runs.map((r) => ({ label: r.runId, description: `${r.experiment} · ${r.status}` })),
      ...(follower.activeRunId ? [{ label: follower.activeRunId, description: "the run followed last" }] : []),
    ],
    { title: "ferry: which run?", placeHolder: "A run id" },
  );
  return typed?.label ?? null;
}

const idOf = (run: RunSummary | string): string => (typeof run === "string" ? run : run.runId);

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const docs = new actions.RunDocuments();
  const logs = new LogDocuments();
  let tree!: RunsTree;
  const follower = new Follower({
    onRunChanged: (_runId, experiment) => {
      if (experiment) {
        void tree.reloadExperiment(experiment);
      } else {
        tree.refresh();
      }
    },
    uiUrl: () => settings().get<string>("uiUrl", ""),
  }, logs);
  tree = new RunsTree(
    () => {
      const ferry = ferryFor();
      return ferry ? new CliSource(ferry) : null;
    },
    () => ({
      activeExperiment: settings().get<string>("activeExperiment", ""),
      pageSize: Math.max(1, settings().get<number>("pageSize", 100)),
    }),
    2000,
    async () => {
      const files = await vscode.workspace.findFiles("**/*.job.{yml,yaml}", "**/{node_modules,.ferry,.git}/**", 200);
      return files
        .map((uri) => {
          const text = fs.readFileSync(uri.fsPath, "utf8");
          const target = /^compute_target:\s*(.+)$/m.exec(text)?.[1]?.replace(/^["']|["']$/g, "") ?? "local";
          return { path: uri.fsPath, label: vscode.workspace.asRelativePath(uri), target };
        })
        .sort((a, b) => a.label.localeCompare(b.label));
    },
  );
  const view = vscode.window.createTreeView("ferry.runs", { treeDataProvider: tree, showCollapseAll: true });
  context.subscriptions.push(
    view,
    tree,
    follower,
    vscode.workspace.registerTextDocumentContentProvider(actions.RunDocuments.scheme, docs),
    vscode.workspace.registerFileSystemProvider(LogDocuments.scheme, logs, { isReadonly: true, isCaseSensitive: true }),
    logs,
  );
  const traceChannel = vscode.window.createOutputChannel("ferry trace");
  context.subscriptions.push(traceChannel);
  // FERRY_VSCODE_TRACE_FILE (for benchmarks): the same lines, appended to that file
  const traceFile = process.env.FERRY_VSCODE_TRACE_FILE;
  const applyTrace = (): void =>
    setTrace(
      settings().get<boolean>("trace", false) || traceFile
        ? (line) => {
            traceChannel.appendLine(line);
            if (traceFile) {
              fs.appendFileSync(traceFile, line + "\n");
            }
          }
        : null,
    );
  applyTrace();
  await locate(tree);

  const guard =
    (fn: (...args: unknown[]) => Promise<void>) =>
    async (...args: unknown[]): Promise<void> => {
      try {
        await fn(...args);
      } catch (err) {
        if (err instanceof FerryError) {
          if (/No such command/.test(err.message)) {
            await reportMissing(true);
          } else {
            showError(err.message, err.fix);
          }
        } else {
          showError(err instanceof Error ? err.message : String(err), null);
        }
      }
    };
  const register = (id: string, fn: (...args: unknown[]) => Promise<void>): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, guard(fn)));
  };

  /** A folder without a workspace gets one (.ferry/ in the folder) on its first submit.
   * Asked once per folder and session: a submit should not wait for a second CLI call. */
  const known = new Set<string>();
  const ensureWorkspace = async (ferry: Ferry, folder: string): Promise<void> => {
    const key = `${folder}\0${settings().get<string>("workspace", "")}`;
    if (known.has(key)) {
      return;
    }
    const info = await ferry.json<WorkspaceInfo>(["workspace", "show"]);
    known.add(key);
    if (info.chosenBy !== "default") {
      return;
    }
    const made = await ferry.json<{ workspace: string }>(["init", folder]);
    void vscode.window.showInformationMessage(`ferry: created a workspace for this folder in ${made.workspace}`);
    tree.refresh();
  };

  const submitJob = async (ferry: Ferry, jobFile: string): Promise<void> => {
    const text = fs.readFileSync(jobFile, "utf8");
    if (/^sweep\s*:/m.test(text)) {
      const id = (await ferry.text(["sweep", path.basename(jobFile), "--no-wait"], path.dirname(jobFile))).trim();
      void vscode.window.showInformationMessage(`ferry: sweep ${id} started`);
      tree.refresh();
      return;
    }
    await context.workspaceState.update(LAST_JOB_KEY, jobFile);
    void follower.follow(ferry, ["submit", path.basename(jobFile), "--stream"], {
      cwd: path.dirname(jobFile),
      notify: true,
      title: `submitting ${path.basename(jobFile)}`,
    });
  };

  register("ferry.submitCurrentScript", async (arg) => {
    const script = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (!script || script.scheme !== "file" || !script.fsPath.endsWith(".py")) {
      void vscode.window.showErrorMessage("ferry: open a Python script (.py) to submit it");
      return;
    }
    const folder = folderOf(script);
    if (!folder) {
      void vscode.window.showErrorMessage(
        `ferry: ${script.fsPath} is outside the open folder; open its folder (File › Open Folder) to submit it`,
      );
      return;
    }
    const ferry = await requireFerry(folder.uri.fsPath);
    if (!ferry || !(await saveFirst(script))) {
      return;
    }
    await ensureWorkspace(ferry, folder.uri.fsPath);
    const choices = await askChoices(ferry, script, settings().get<string>("activeExperiment", ""), true);
    if (!choices) {
      return;
    }
    await submitJob(ferry, writeJobFile(script, choices));
  });

  register("ferry.submitAgain", async () => {
    const job = context.workspaceState.get<string>(LAST_JOB_KEY);
    if (!job || !fs.existsSync(job)) {
      await vscode.commands.executeCommand("ferry.submitCurrentScript");
      return;
    }
    const ferry = await requireFerry();
    if (ferry && (await saveFirst(vscode.Uri.file(job)))) {
      await submitJob(ferry, job);
    }
  });

  register("ferry.submitJobFile", async (arg) => {
    traceStep("ferry.submitJobFile");
    const file =
      arg instanceof vscode.Uri
        ? arg
        : arg && typeof arg === "object" && (arg as Node).kind === "job"
          ? vscode.Uri.file((arg as Extract<Node, { kind: "job" }>).path)
          : vscode.window.activeTextEditor?.document.uri;
    if (!file || file.scheme !== "file" || !/\.ya?ml$/.test(file.fsPath)) {
      void vscode.window.showErrorMessage("ferry: open a job file (.yml) to submit it");
      return;
    }
    const ferry = await requireFerry();
    if (ferry && (await saveFirst(file))) {
      await ensureWorkspace(ferry, folderOf(file)?.uri.fsPath ?? path.dirname(file.fsPath));
      await submitJob(ferry, file.fsPath);
    }
  });

  register("ferry.refresh", async () => {
    await locate(tree);
    tree.refresh();
  });
  register("ferry.loadMore", async (node) => tree.loadMore(node as Extract<Node, { kind: "more" }>));
  register("ferry.install", async () => {
    const python = interpreter ?? "python3";
    const terminal = vscode.window.createTerminal("ferry install");
    terminal.show();
    terminal.sendText(`"${python}" -m pip install -U ferry`);
  });

  register("ferry.openLog", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      void follower.follow(ferry, ["runs", "logs", idOf(run), "-f"], { notify: false, title: `log of ${idOf(run)}` });
    }
  });
  register("ferry.showDetails", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      await actions.showDetails(ferry, docs, idOf(run));
    }
  });
  register("ferry.showMetrics", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      await actions.showMetrics(ferry, idOf(run), settings().get<string>("uiUrl", ""));
    }
  });
  register("ferry.cancelRun", async (arg) => {
    const run = await runOf(arg, tree, follower, true);
    const ferry = await requireFerry();
    if (run && ferry) {
      const done = await ferry.json<{ cancelRequested: boolean; status: string }>(["runs", "cancel", idOf(run)]);
      void vscode.window.showInformationMessage(
        done.cancelRequested ? `ferry: cancel requested for ${idOf(run)}` : `ferry: ${idOf(run)} had already ended (${done.status})`,
      );
      await tree.refreshLive();
    }
  });
  register("ferry.rerun", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      void follower.follow(ferry, ["runs", "rerun", idOf(run), "--stream"], { notify: true, title: `rerun of ${idOf(run)}` });
    }
  });
  register("ferry.copyRunId", async (arg) => {
    const run = await runOf(arg, tree, follower);
    if (run) {
      await vscode.env.clipboard.writeText(idOf(run));
      void vscode.window.setStatusBarMessage(`ferry: copied ${idOf(run)}`, 3000);
    }
  });
  register("ferry.editTags", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      const tags = typeof run === "string" ? (await ferry.json<{ tags: Record<string, string | null> }>(["runs", "show", run])).tags : run.tags;
      await actions.editTags(ferry, idOf(run), tags);
      tree.refresh();
    }
  });
  register("ferry.compareWithWorkingFolder", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      const details = await ferry.json<{ runDefinition?: { sourceDirectory?: string } }>(["runs", "show", idOf(run)]);
      const source = details.runDefinition?.sourceDirectory;
      const folder = source && fs.existsSync(source) ? source : rootFolder();
      await actions.compareWithWorkingFolder(ferry, run, folder);
    }
  });
  register("ferry.compareRuns", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (!run || !ferry) {
      return;
    }
    const others = tree.loadedRuns().filter((r) => r.runId !== idOf(run));
    const other = await vscode.window.showQuickPick(
      others.map((r) => ({ label: r.runId, description: `${r.experiment} · ${r.status}` })),
      { title: `ferry: compare the code of ${idOf(run)} with…` },
    );
    if (other) {
      await actions.compareRuns(ferry, other.label, idOf(run));
    }
  });
  register("ferry.restoreSnapshot", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      await actions.restoreSnapshot(ferry, idOf(run), rootFolder());
    }
  });
  register("ferry.downloadOutputs", async (arg) => {
    const run = await runOf(arg, tree, follower);
    const ferry = await requireFerry();
    if (run && ferry) {
      await actions.downloadOutputs(ferry, idOf(run), rootFolder());
    }
  });
  register("ferry.setActiveExperiment", async (arg) => {
    let name: string | undefined;
    if (arg && typeof arg === "object" && (arg as Node).kind === "experiment") {
      name = (arg as Extract<Node, { kind: "experiment" }>).name;
    } else {
      const ferry = await requireFerry();
      if (!ferry) {
        return;
      }
      const names = (await ferry.json<{ name: string }[]>(["experiments", "list"])).map((e) => e.name);
      name = await vscode.window.showQuickPick(names, { title: "ferry: the active experiment of this folder" });
    }
    if (name) {
      await settings().update("activeExperiment", name, vscode.ConfigurationTarget.Workspace);
      tree.refresh();
      void vscode.window.setStatusBarMessage(`ferry: active experiment ${name}`, 3000);
    }
  });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("ferry")) {
        applyTrace();
        void locate(tree).then(() => tree.refresh());
      }
    }),
  );
}

export function deactivate(): void {
  // the subscriptions dispose the tree's timer, the follower's process and the status bar
}
