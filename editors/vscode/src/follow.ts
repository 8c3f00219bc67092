// Following a run: its log grows in a read-only editor beside the code as the job writes it
// (and goes to the "ferry run log" output channel), a status-bar item shows the active run's
// status and elapsed time, and a notification at the end offers Open Run, Show Metrics and
// (when the studio UI serves the workspace) Open in ferry UI.

import * as vscode from "vscode";
import { Ferry, Stream, StreamEvent } from "./cli";
import { formatDuration, isTerminal } from "./format";

export interface FollowHooks {
  /** A run was queued or changed status (the tree reloads its experiment). */
  onRunChanged(runId: string, experiment: string | undefined): void;
  /** The studio UI's address, when one serves this workspace. */
  uiUrl(): string;
}

/**
 * A run's log as a read-only editor that grows (ferry-log:/ferry run.log), served as a read-only
 * file system: a change event makes the window reload the file, whose model takes the new text
 * as a plain edit. (A content provider's change goes through the editor worker's diff, an output
 * channel through a file the window polls: both show a line hundreds of ms late.) The first
 * chunk is announced at once, then at most every 50 ms.
 */
export class LogDocuments implements vscode.FileSystemProvider, vscode.Disposable {
  static readonly scheme = "ferry-log";
  /** The one log editor: the run followed last. One document, shown once and then only
   * changed, so a submit's first line needs no new editor (opening one costs hundreds of ms). */
  static readonly current = vscode.Uri.from({ scheme: LogDocuments.scheme, path: "/ferry run.log" });
  private readonly texts = new Map<string, { data: Uint8Array; mtime: number }>();
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;
  private readonly lastFired = new Map<string, number>();
  private readonly scheduled = new Set<string>();
  private readonly encoder = new TextEncoder();

  set(uri: vscode.Uri, text: string): void {
    this.texts.set(uri.path, { data: this.encoder.encode(text), mtime: Date.now() });
    this.changed(uri);
  }

  append(uri: vscode.Uri, text: string): void {
    const old = this.texts.get(uri.path)?.data ?? new Uint8Array();
    const add = this.encoder.encode(text);
    const data = new Uint8Array(old.length + add.length);
    data.set(old);
    data.set(add, old.length);
    this.texts.set(uri.path, { data, mtime: Date.now() });
    this.changed(uri);
  }

  private changed(uri: vscode.Uri): void {
    const key = uri.path;
    const fire = (): void => {
      this.lastFired.set(key, Date.now());
      this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri }]);
    };
    const wait = 50 - (Date.now() - (this.lastFired.get(key) ?? 0));
    if (wait <= 0) {
      fire();
    } else if (!this.scheduled.has(key)) {
      this.scheduled.add(key);
      setTimeout(() => {
        this.scheduled.delete(key);
        fire();
      }, wait);
    }
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  stat(uri: vscode.Uri): vscode.FileStat {
    const entry = this.texts.get(uri.path);
    if (!entry) {
      throw vscode.FileSystemError.FileNotFound(uri);
    }
    return { type: vscode.FileType.File, ctime: 0, mtime: entry.mtime, size: entry.data.length };
  }

  readFile(uri: vscode.Uri): Uint8Array {
    const entry = this.texts.get(uri.path);
    if (!entry) {
      throw vscode.FileSystemError.FileNotFound(uri);
    }
    return entry.data;
  }

  readDirectory(): [string, vscode.FileType][] {
    return [...this.texts.keys()].map((p) => [p.slice(1), vscode.FileType.File]);
  }

  createDirectory(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  writeFile(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  delete(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  rename(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/** One followed command: its process, its run, and whether its log is the one shown. */
interface Following {
  stream: Stream;
  runId: string | null;
  stopped: boolean;
  shown: boolean;
  notify: boolean;
}

export class Follower implements vscode.Disposable {
  readonly channel: vscode.OutputChannel;
  private readonly status: vscode.StatusBarItem;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private current: Following | null = null;
  /** Submits still going whose log is no longer shown: they keep running for their end
   * notification (another run's log was opened meanwhile). */
  private readonly background = new Set<Following>();
  /** The run the status bar shows (the cancel command's default). */
  activeRunId: string | null = null;
  private activeStatus = "";
  private started = 0;

  constructor(
    private readonly hooks: FollowHooks,
    private readonly logs: LogDocuments,
  ) {
    this.channel = vscode.window.createOutputChannel("ferry run log");
    this.status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
    this.status.name = "ferry run";
  }

  dispose(): void {
    this.stopCurrent();
    for (const state of this.background) {
      state.stopped = true;
      state.stream.stop();
    }
    this.channel.dispose();
    this.status.dispose();
  }

  /**
   * Follow a JSON-lines command (`submit --json --stream`, `runs rerun --json --stream`,
   * `runs logs -f --json`): `notify` shows the end notification (a submit or a rerun).
   */
  follow(ferry: Ferry, args: string[], options: { cwd?: string; notify: boolean; title: string }): Promise<string | null> {
    if (this.current?.notify) {
      this.current.shown = false; // a submit going on: it still notifies at its end
      this.background.add(this.current);
      this.current = null;
    }
    this.stopCurrent();
    this.started = Date.now(); // the status bar's clock: from the submit (or the log opened)
    this.channel.clear();
    this.channel.appendLine(`ferry: ${options.title}`);
    const state: Following = {
      stream: undefined as unknown as Stream,
      runId: null,
      stopped: false,
      shown: true,
      notify: options.notify,
    };
    let experiment: string | undefined;
    let endStatus: string | null = null;
    const logUri = LogDocuments.current;
    this.logs.set(logUri, `# ferry: ${options.title}\n`);
    void this.showLog(logUri); // while the CLI starts
    const onEvent = (event: StreamEvent): void => {
      if (state.stopped) {
        return;
      }
      if (event.error !== undefined) {
        showError(event.error, event.fix ?? null);
        if (state.shown) {
          this.channel.appendLine(`ferry: error: ${event.error}`);
          this.setStatus(state.runId, "Error");
        }
        return;
      }
      if (event.runId && !state.runId) {
        state.runId = event.runId;
        this.activeRunId = state.shown ? event.runId : this.activeRunId;
      }
      if (!state.shown) {
        if (event.event === "end") {
          this.hooks.onRunChanged(event.runId ?? "", experiment);
          if (options.notify) {
            void this.notifyEnd(event, null);
          }
        }
        return;
      }
      if (event.event === "queued") {
        experiment = event.experiment;
        const line = `run ${event.runId} queued on ${event.target} (experiment ${event.experiment})`;
        this.channel.appendLine(line);
        this.logs.append(logUri, `# ferry: ${line}\n`);
        this.setStatus(event.runId ?? null, "Queued");
        this.hooks.onRunChanged(event.runId ?? "", experiment);
      } else if (event.event === "log" && event.text !== undefined) {
        if (this.activeStatus !== "Running") {
          this.setStatus(state.runId, "Running");
        }
        this.channel.append(event.text);
        this.logs.append(logUri, event.text);
      } else if (event.event === "end") {
        endStatus = event.status ?? "Unknown";
        this.channel.appendLine(`\nferry: run ${event.runId} ${endStatus}`);
        this.logs.append(logUri, `\n# ferry: run ${event.runId} ${endStatus}\n`);
        this.setStatus(state.runId, endStatus);
        this.hooks.onRunChanged(event.runId ?? "", experiment);
        if (options.notify) {
          void this.notifyEnd(event, this.started);
        }
      }
    };
    state.stream = ferry.stream(args, onEvent, options.cwd);
    this.current = state;
    this.setStatus(null, "Submitting");
    return state.stream.done.then(() => {
      if (this.current === state) {
        this.current = null;
      }
      this.background.delete(state);
      return endStatus;
    });
  }

  /** The log editor beside the code, without taking the focus (left alone when it shows). */
  private async showLog(uri: vscode.Uri): Promise<void> {
    const visible = vscode.window.visibleTextEditors.some((e) => e.document.uri.toString() === uri.toString());
    if (visible) {
      return;
    }
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, {
      preview: true,
      preserveFocus: true,
      viewColumn: vscode.ViewColumn.Beside,
    });
  }

  /** Stop following (the run itself goes on). */
  stopCurrent(): void {
    if (this.current) {
      this.current.stopped = true;
      this.current.stream.stop();
      this.current = null;
    }
  }

  private setStatus(runId: string | null, status: string): void {
    this.activeStatus = status;
    const icon = status === "Completed" ? "$(pass)" : status === "Failed" || status === "Error" ? "$(error)" : status === "Canceled" ? "$(circle-slash)" : "$(sync~spin)";
    const render = (): void => {
      const elapsed = this.started ? formatDuration((Date.now() - this.started) / 1000) : "";
      this.status.text = `${icon} ferry: ${status}${elapsed ? " " + elapsed : ""}`;
      this.status.tooltip = runId ? `ferry run ${runId}: ${status}` : `ferry: ${status}`;
    };
    render();
    this.status.command = runId ? { command: "ferry.showDetails", title: "Show Details", arguments: [runId] } : undefined;
    this.status.show();
    if (this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    if (!isTerminal(status) && status !== "Error") {
      this.ticker = setInterval(render, 1000);
    }
  }

  private async notifyEnd(event: StreamEvent, started: number | null): Promise<void> {
    const runId = event.runId ?? "";
    const seconds = started ? (Date.now() - started) / 1000 : null;
    const message = `ferry: run ${runId} ${event.status}${seconds !== null ? ` in ${formatDuration(seconds)}` : ""}`;
    // the studio's page of the run when `ferry ui` (or the server) serves the workspace
    const portal = typeof event.details?.portalUrl === "string" ? event.details.portalUrl : "";
    const setting = this.hooks.uiUrl();
    const page = portal || (setting ? `${setting.replace(/\/$/, "")}/#/runs/${encodeURIComponent(runId)}` : "");
    const actions = ["Open Run", "Show Metrics", ...(page ? ["Open in ferry UI"] : [])];
    const choice =
      event.status === "Completed"
        ? await vscode.window.showInformationMessage(message, ...actions)
        : await vscode.window.showWarningMessage(message, ...actions);
    if (choice === "Open Run") {
      await vscode.commands.executeCommand("ferry.showDetails", runId);
    } else if (choice === "Show Metrics") {
      await vscode.commands.executeCommand("ferry.showMetrics", runId);
    } else if (choice === "Open in ferry UI") {
      await vscode.env.openExternal(vscode.Uri.parse(page));
    }
  }
}

/** A CLI error as a VS Code error: its message, and the fix when the CLI named one. */
export function showError(message: string, fix: string | null): void {
  const text = fix && !message.includes(fix) ? `ferry: ${message} — ${fix}` : `ferry: ${message}`;
  void vscode.window.showErrorMessage(text);
}
