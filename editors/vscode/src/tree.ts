// The "ferry" view: the workspace (path or server URL) → experiments (the active one marked) →
// runs, newest first, a page at a time ("Load more") → a run's children (a sweep's best first);
// compute targets; environments; datasets and models where some were registered.
// Runs that are not terminal are refreshed live by a timer while any is shown.

import * as vscode from "vscode";
import { RunSummary, isTerminal, runLabel, statusIcon } from "./format";

export interface WorkspaceInfo {
  kind: "local" | "server";
  location: string;
  name: string;
  chosenBy: "option" | "config" | "default";
}

export interface Page {
  runs: RunSummary[];
  nextOffset: number | null;
}

/** What the tree asks (the CLI in the extension, a fake in the unit tests). */
export interface TreeSource {
  workspace(): Promise<WorkspaceInfo>;
  experiments(): Promise<{ name: string }[]>;
  runs(experiment: string, offset: number, limit: number): Promise<Page>;
  children(runId: string, offset: number, limit: number): Promise<Page>;
  targets(): Promise<{ name: string; type: string }[]>;
  environments(): Promise<{ name: string; version: number | null; curated: boolean }[]>;
  datasets(): Promise<{ name: string; version?: number }[]>;
  models(): Promise<{ name: string; version?: number }[]>;
}

export type Node =
  | { kind: "workspace"; info: WorkspaceInfo }
  | { kind: "experiment"; name: string }
  | { kind: "run"; run: RunSummary }
  | { kind: "more"; owner: string; ownerKind: "experiment" | "run" }
  | { kind: "group"; group: "targets" | "environments" | "datasets" | "models" | "jobs" }
  | { kind: "job"; path: string; label: string; target: string }
  | { kind: "leaf"; label: string; description: string; icon: string }
  | { kind: "message"; label: string; command?: vscode.Command };

/** Runs loaded so far under one experiment or run, and where the next page starts. */
interface Loaded {
  runs: RunSummary[];
  nextOffset: number | null;
}

export class RunsTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  /** Loaded pages by experiment name or parent run id. */
  private readonly loaded = new Map<string, Loaded>();
  private readonly nodes = new Map<string, Node>(); // the node object of each owner, for refreshes
  private timer: ReturnType<typeof setInterval> | undefined;
  private emptyMessage: Node | null = null;
  private assets: { datasets: boolean; models: boolean } | null = null;

  constructor(
    private source: () => TreeSource | null,
    private readonly settings: () => { activeExperiment: string; pageSize: number },
    private readonly liveEveryMs = 2000,
    /** The job files of the open folder (the reference's run configurations). */
    private readonly jobFiles: () => Promise<{ path: string; label: string; target: string }[]> = async () => [],
  ) {}

  /** Forget everything loaded and redraw (after a submit, a setting change). */
  refresh(): void {
    this.loaded.clear();
    this.assets = null;
    this.nodes.clear();
    this.changed.fire(undefined);
  }

  /** Shown instead of the tree when there is no ferry (with an install command). */
  setMessage(message: Node | null): void {
    this.emptyMessage = message;
    this.refresh();
  }

  dispose(): void {
    if (this.timer) {
      clearInterval(this.timer);
    }
    this.changed.dispose();
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.kind) {
      case "workspace": {
        const item = new vscode.TreeItem(node.info.location, vscode.TreeItemCollapsibleState.Expanded);
        item.description =
          node.info.chosenBy === "default" ? "no workspace for this folder yet: made on first submit" : node.info.kind;
        item.iconPath = new vscode.ThemeIcon(node.info.kind === "server" ? "cloud" : "folder-library");
        item.contextValue = "workspace";
        item.tooltip = `${node.info.kind} workspace ${node.info.location}`;
        return item;
      }
      case "experiment": {
        const active = this.settings().activeExperiment === node.name;
        const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `experiment:${node.name}`;
        item.description = active ? "active" : undefined;
        item.iconPath = new vscode.ThemeIcon(active ? "star-full" : "beaker");
        item.contextValue = "experiment";
        return item;
      }
      case "run": {
        const { label, description } = runLabel(node.run);
        const sweep = node.run.runType === "hyperdrive";
        const item = new vscode.TreeItem(
          label,
          sweep ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None,
        );
        item.id = `run:${node.run.runId}`;
        item.description = description;
        const icon = statusIcon(node.run.status);
        item.iconPath = new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
        item.contextValue = isTerminal(node.run.status) ? "run.done" : "run.live";
        item.tooltip = `${node.run.runId}\n${node.run.status} on ${node.run.target}`;
        item.command = { command: "ferry.openLog", title: "Open Log", arguments: [node] };
        return item;
      }
      case "more": {
        const item = new vscode.TreeItem("Load more…", vscode.TreeItemCollapsibleState.None);
        item.iconPath = new vscode.ThemeIcon("ellipsis");
        item.command = { command: "ferry.loadMore", title: "Load more", arguments: [node] };
        item.contextValue = "more";
        return item;
      }
      case "group": {
        const titles = {
          targets: "Compute targets",
          environments: "Environments",
          datasets: "Datasets",
          models: "Models",
          jobs: "Run configurations",
        };
        const icons = {
          targets: "server",
          environments: "package",
          datasets: "database",
          models: "symbol-class",
          jobs: "file-code",
        };
        const item = new vscode.TreeItem(titles[node.group], vscode.TreeItemCollapsibleState.Collapsed);
        item.iconPath = new vscode.ThemeIcon(icons[node.group]);
        item.contextValue = `group.${node.group}`;
        return item;
      }
      case "job": {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.description = node.target;
        item.iconPath = new vscode.ThemeIcon("play-circle");
        item.contextValue = "job";
        item.tooltip = `${node.path}: submit with 'ferry: Submit Job File'`;
        return item;
      }
      case "leaf": {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon(node.icon);
        return item;
      }
      case "message": {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.iconPath = new vscode.ThemeIcon("warning");
        item.command = node.command;
        return item;
      }
    }
  }

  async getChildren(node?: Node): Promise<Node[]> {
    const source = this.source();
    if (!node) {
      if (this.emptyMessage || !source) {
        return this.emptyMessage ? [this.emptyMessage] : [];
      }
      try {
        return [{ kind: "workspace", info: await source.workspace() }];
      } catch (err) {
        return [{ kind: "message", label: errorText(err) }];
      }
    }
    if (!source) {
      return [];
    }
    try {
      return await this.childrenOf(source, node);
    } catch (err) {
      return [{ kind: "message", label: errorText(err) }];
    }
  }

  private async childrenOf(source: TreeSource, node: Node): Promise<Node[]> {
    switch (node.kind) {
      case "workspace": {
        const active = this.settings().activeExperiment;
        const names = (await source.experiments()).map((e) => e.name);
        names.sort((a, b) => (a === active ? -1 : b === active ? 1 : a.localeCompare(b)));
        const groups: Node[] = [
          { kind: "group", group: "jobs" },
          { kind: "group", group: "targets" },
          { kind: "group", group: "environments" },
        ];
        if (this.assets === null) {
          // whether datasets or models have landed: asked beside, so experiments show at once
          this.assets = { datasets: false, models: false };
          void Promise.all([source.datasets().catch(() => []), source.models().catch(() => [])]).then(
            ([datasets, models]) => {
              this.assets = { datasets: datasets.length > 0, models: models.length > 0 };
              if (datasets.length || models.length) {
                this.changed.fire(node);
              }
            },
          );
        }
        if (this.assets.datasets) {
          groups.push({ kind: "group", group: "datasets" });
        }
        if (this.assets.models) {
          groups.push({ kind: "group", group: "models" });
        }
        return [...names.map((name): Node => ({ kind: "experiment", name })), ...groups];
      }
      case "experiment":
        return this.pageNodes(source, node.name, "experiment", node);
      case "run":
        return this.pageNodes(source, node.run.runId, "run", node);
      case "group":
        return this.groupChildren(source, node.group);
      default:
        return [];
    }
  }

  private async pageNodes(source: TreeSource, owner: string, ownerKind: "experiment" | "run", node: Node): Promise<Node[]> {
    let loaded = this.loaded.get(owner);
    if (!loaded) {
      const size = this.settings().pageSize;
      const page = ownerKind === "experiment" ? await source.runs(owner, 0, size) : await source.children(owner, 0, size);
      loaded = { runs: page.runs, nextOffset: page.nextOffset };
      this.loaded.set(owner, loaded);
    }
    this.nodes.set(owner, node);
    this.scheduleLive();
    const nodes: Node[] = loaded.runs.map((run) => ({ kind: "run", run }));
    if (loaded.nextOffset !== null) {
      nodes.push({ kind: "more", owner, ownerKind });
    }
    return nodes;
  }

  /** "Load more…": the next page under the same experiment or run. */
  async loadMore(more: Extract<Node, { kind: "more" }>): Promise<void> {
    const source = this.source();
    const loaded = this.loaded.get(more.owner);
    if (!source || !loaded || loaded.nextOffset === null) {
      return;
    }
    const size = this.settings().pageSize;
    const page =
      more.ownerKind === "experiment"
        ? await source.runs(more.owner, loaded.nextOffset, size)
        : await source.children(more.owner, loaded.nextOffset, size);
    loaded.runs.push(...page.runs);
    loaded.nextOffset = page.nextOffset;
    this.changed.fire(this.nodes.get(more.owner));
  }

  /** Runs loaded in the tree (for the cancel command's pick and the tests). */
  loadedRuns(): RunSummary[] {
    return [...this.loaded.values()].flatMap((l) => l.runs);
  }

  private scheduleLive(): void {
    if (this.timer || this.liveEveryMs <= 0) {
      return;
    }
    this.timer = setInterval(() => void this.refreshLive(), this.liveEveryMs);
  }

  /** Reload the pages that hold runs not yet ended (as many runs as were loaded). */
  async refreshLive(): Promise<void> {
    const source = this.source();
    if (!source) {
      return;
    }
    for (const [owner, loaded] of this.loaded) {
      if (loaded.runs.every((r) => isTerminal(r.status))) {
        continue;
      }
      const node = this.nodes.get(owner);
      const count = Math.max(loaded.runs.length, 1);
      const page =
        node?.kind === "run" ? await source.children(owner, 0, count) : await source.runs(owner, 0, count);
      this.loaded.set(owner, { runs: page.runs, nextOffset: page.nextOffset });
      this.changed.fire(node);
    }
  }

  /** Reload one experiment's first pages now (a submit just added a run to it). */
  async reloadExperiment(name: string): Promise<void> {
    const loaded = this.loaded.get(name);
    const source = this.source();
    if (!loaded || !source) {
      this.changed.fire(undefined);
      return;
    }
    const page = await source.runs(name, 0, Math.max(loaded.runs.length, this.settings().pageSize));
    this.loaded.set(name, { runs: page.runs, nextOffset: page.nextOffset });
    this.changed.fire(this.nodes.get(name));
  }

  private async groupChildren(source: TreeSource, group: string): Promise<Node[]> {
    switch (group) {
      case "jobs":
        return (await this.jobFiles()).map((j) => ({ kind: "job", ...j }));
      case "targets":
        return (await source.targets()).map((t) => ({ kind: "leaf", label: t.name, description: t.type, icon: "server" }));
      case "environments":
        return (await source.environments()).map((e) => ({
          kind: "leaf",
          label: e.name,
          description: [e.version !== null ? `v${e.version}` : "", e.curated ? "curated" : "registered"]
            .filter(Boolean)
            .join(" · "),
          icon: "package",
        }));
      case "datasets":
        return (await source.datasets()).map((d) => ({
          kind: "leaf",
          label: d.name,
          description: d.version !== undefined ? `v${d.version}` : "",
          icon: "database",
        }));
      default:
        return (await source.models()).map((m) => ({
          kind: "leaf",
          label: m.name,
          description: m.version !== undefined ? `v${m.version}` : "",
          icon: "symbol-class",
        }));
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
