import assert from "node:assert/strict";
import { test } from "node:test";
import { RunSummary } from "../src/format";
import { Node, Page, RunsTree, TreeSource } from "../src/tree";

function summary(i: number, experiment = "big", status = "Completed"): RunSummary {
  return {
    runId: `${experiment}_${i}`,
    experiment,
    status,
    target: "local",
    parentRunId: null,
    runType: "ferry.scriptrun",
    number: i,
    displayName: null,
    createdAt: i,
    startTime: i,
    endTime: status === "Completed" ? i + 2 : null,
    durationSeconds: status === "Completed" ? 2 : null,
    tags: {},
    metrics: { acc: 0.5 },
    primaryMetric: { name: "acc", value: 0.5 },
  };
}

/** A source over an in-memory experiment of `total` runs, newest first; counts its calls. */
class MemorySource implements TreeSource {
  calls: string[] = [];
  statuses = new Map<number, string>();
  constructor(private readonly total: number) {}
  async workspace() {
    return { kind: "local" as const, location: "/p/.ferry", name: ".ferry", chosenBy: "config" as const };
  }
  async experiments() {
    return [{ name: "alpha" }, { name: "big" }, { name: "zeta" }];
  }
  async runs(experiment: string, offset: number, limit: number): Promise<Page> {
    this.calls.push(`runs ${experiment} ${offset} ${limit}`);
    const runs: RunSummary[] = [];
    for (let i = this.total - offset; i > Math.max(this.total - offset - limit, 0); i--) {
      runs.push(summary(i, experiment, this.statuses.get(i) ?? "Completed"));
    }
    return { runs, nextOffset: offset + limit < this.total ? offset + limit : null };
  }
  async children(): Promise<Page> {
    return { runs: [], nextOffset: null };
  }
  async targets() {
    return [{ name: "local", type: "local" }];
  }
  async environments() {
    return [{ name: "ferry-minimal", version: 1, curated: true }];
  }
  async datasets() {
    return [];
  }
  async models() {
    return [{ name: "m", version: 2 }];
  }
}

function tree(source: TreeSource, active = "zeta", pageSize = 100): RunsTree {
  const jobs = async () => [{ path: "/p/train.job.yml", label: "train.job.yml", target: "gpu" }];
  return new RunsTree(() => source, () => ({ activeExperiment: active, pageSize }), 0, jobs);
}

test("workspace → experiments (the active one first and marked) and the groups that have items", async () => {
  const t = tree(new MemorySource(3));
  const [root] = await t.getChildren();
  assert.equal(t.getTreeItem(root).label, "/p/.ferry");
  const first = await t.getChildren(root);
  // models are asked beside the experiments; the group shows once the answer is in
  assert.deepEqual(first.map((n) => t.getTreeItem(n).label), ["zeta", "alpha", "big", "Run configurations", "Compute targets", "Environments"]);
  await new Promise((resolve) => setImmediate(resolve));
  const children = await t.getChildren(root);
  const labels = children.map((n) => t.getTreeItem(n).label);
  assert.deepEqual(labels, ["zeta", "alpha", "big", "Run configurations", "Compute targets", "Environments", "Models"]);
  assert.equal(t.getTreeItem(children[0]).description, "active");
  const targets = await t.getChildren(children[4]);
  assert.deepEqual(targets.map((n) => t.getTreeItem(n).label), ["local"]);
  const [job] = await t.getChildren(children[3]);
  assert.equal(t.getTreeItem(job).label, "train.job.yml");
  assert.equal(t.getTreeItem(job).description, "gpu");
  assert.equal(t.getTreeItem(job).contextValue, "job");
});

test("an experiment of 10,000 runs shows one page and loads more on demand, fast", async () => {
  const source = new MemorySource(10_000);
  const t = tree(source);
  const experiment: Node = { kind: "experiment", name: "big" };
  const started = performance.now();
  const first = await t.getChildren(experiment);
  assert.ok(performance.now() - started < 1000);
  assert.equal(first.length, 101);
  assert.equal(first[100].kind, "more");
  const item = t.getTreeItem(first[0]);
  assert.equal(item.label, "Run 10000");
  assert.equal(item.description, "Completed · 2.0 s · acc 0.5");
  assert.equal(item.contextValue, "run.done");

  await t.loadMore(first[100] as Extract<Node, { kind: "more" }>);
  const second = await t.getChildren(experiment);
  assert.equal(second.length, 201);
  assert.equal(t.getTreeItem(second[199]).label, "Run 9801");
  assert.deepEqual(source.calls, ["runs big 0 100", "runs big 100 100"]);
});

test("runs not yet ended are reloaded live; ended pages are left alone", async () => {
  const source = new MemorySource(5);
  source.statuses.set(5, "Running");
  const t = tree(source);
  const experiment: Node = { kind: "experiment", name: "big" };
  const before = await t.getChildren(experiment);
  assert.equal(t.getTreeItem(before[0]).contextValue, "run.live");
  source.statuses.set(5, "Completed");
  await t.refreshLive();
  const after = await t.getChildren(experiment);
  assert.equal(t.getTreeItem(after[0]).contextValue, "run.done");
  const calls = source.calls.length;
  await t.refreshLive(); // nothing live any more: no query
  assert.equal(source.calls.length, calls);
});

test("a CLI error shows as a row with its message, never a stack", async () => {
  const broken = new MemorySource(1);
  broken.runs = async () => {
    throw new Error("no run history here; run ferry init");
  };
  const t = tree(broken);
  const rows = await t.getChildren({ kind: "experiment", name: "big" });
  assert.deepEqual(rows, [{ kind: "message", label: "no run history here; run ferry init" }]);
});
