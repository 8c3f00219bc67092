// Following a run: its log streams into an output channel as the job writes it, a status-bar
// item shows the active run's status and elapsed time, and a notification at the end offers
// Open Run, Show Metrics and (when the studio UI serves the workspace) Open in ferry UI.

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
 * A run's log as a read-only editor that grows (ferry-log:/RUN.log): each chunk is shown as it
 * arrives (the first at once, then at most every 50 ms), which an output channel — written to a
 * file the window polls — does not do.
 */
export class LogDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  static readonly scheme = "ferry-log";
  private readonly texts = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly lastFired = new Map<string, number>();
  private readonly scheduled = new Set<string>();

  static uri(runId: string): vscode.Uri {
    return vscode.Uri.from({ scheme: LogDocuments.scheme, path: `/${runId}.log` });
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? "";
  }

  set(uri: vscode.Uri, text: string): void {
    this.texts.set(uri.toString(), text);
    this.changed(uri);
  }

  append(uri: vscode.Uri, text: string): void {
    this.texts.set(uri.toString(), (this.texts.get(uri.toString()) ?? "") + text);
    this.changed(uri);
  }

  private changed(uri: vscode.Uri): void {
    const key = uri.toString();
    const wait = 50 - (Date.now() - (this.lastFired.get(key) ?? 0));
    if (wait <= 0) {
      this.lastFired.set(key, Date.now());
      this.emitter.fire(uri);
    } else if (!this.scheduled.has(key)) {
      this.scheduled.add(key);
      setTimeout(() => {
        this.scheduled.delete(key);
        this.lastFired.set(key, Date.now());
        this.emitter.fire(uri);
      }, wait);
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

export class Follower implements vscode.Disposable {
  readonly channel: vscode.OutputChannel;
  private readonly status: vscode.StatusBarItem;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private current: { stream: Stream; runId: string | null; stopped: boolean } | null = null;
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
    this.channel.dispose();
    this.status.dispose();
  }

  /**
   * Follow a JSON-lines command (`submit --json --stream`, `runs rerun --json --stream`,
   * `runs logs -f --json`): `notify` shows the end notification (a submit or a rerun).
   */
  follow(ferry: Ferry, args: string[], options: { cwd?: string; notify: boolean; title: string }): Promise<string | null> {
    this.stopCurrent();
    this.started = Date.now(); // the status bar's clock: from the submit (or the log opened)
    this.channel.clear();
    this.channel.appendLine(`ferry: ${options.title}`);
    const state: { stream: Stream; runId: string | null; stopped: boolean } = {
      stream: undefined as unknown as Stream,
      runId: null,
      stopped: false,
    };
    let experiment: string | undefined;
    let endStatus: string | null = null;
    let logUri: vscode.Uri | undefined;
    const onEvent = (event: StreamEvent): void => {
      if (state.stopped) {
        return;
      }
      if (event.error !== undefined) {
        this.channel.appendLine(`ferry: error: ${event.error}`);
        showError(event.error, event.fix ?? null);
        this.setStatus(state.runId, "Error");
        return;
      }
      if (event.runId && !state.runId) {
        state.runId = event.runId;
        this.activeRunId = event.runId;
      }
      if (state.runId && !logUri) {
        logUri = LogDocuments.uri(state.runId);
        this.logs.set(logUri, "");
        void this.showLog(logUri);
      }
      if (event.event === "queued") {
        experiment = event.experiment;
        const line = `run ${event.runId} queued on ${event.target} (experiment ${event.experiment})`;
        this.channel.appendLine(line);
        this.logs.append(logUri!, `# ferry: ${line}\n`);
        this.setStatus(event.runId ?? null, "Queued");
        this.hooks.onRunChanged(event.runId ?? "", experiment);
      } else if (event.event === "log" && event.text !== undefined) {
        if (this.activeStatus !== "Running") {
          this.setStatus(state.runId, "Running");
        }
        this.channel.append(event.text);
        this.logs.append(logUri!, event.text);
      } else if (event.event === "end") {
        endStatus = event.status ?? "Unknown";
        this.channel.appendLine(`\nferry: run ${event.runId} ${endStatus}`);
        this.logs.append(logUri!, `\n# ferry: run ${event.runId} ${endStatus}\n`);
        this.setStatus(state.runId, endStatus);
        this.hooks.onRunChanged(event.runId ?? "", experiment);
        if (options.notify) {
          void this.notifyEnd(event);
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
      return endStatus;
    });
  }

  /** The log editor beside the code, without taking the focus. */
  private async showLog(uri: vscode.Uri): Promise<void> {
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

  private async notifyEnd(event: StreamEvent): Promise<void> {
    const runId = event.runId ?? "";
    const seconds = this.started ? (Date.now() - this.started) / 1000 : null;
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
