import assert from "node:assert/strict";
import { test } from "node:test";
import {
  RunSummary,
  folderExperiment,
  formatDuration,
  formatMetric,
  jobFileName,
  jobFileText,
  runLabel,
  splitArguments,
  statusIcon,
  tagChanges,
  tagsText,
  yamlScalar,
} from "../src/format";

export function run(over: Partial<RunSummary> = {}): RunSummary {
  return {
    runId: "exp_1_abc",
    experiment: "exp",
    status: "Completed",
    target: "local",
    parentRunId: null,
    runType: "ferry.scriptrun",
    number: 3,
    displayName: null,
    createdAt: 100,
    startTime: 100,
    endTime: 112.5,
    durationSeconds: 12.5,
    tags: {},
    metrics: { loss: 0.123456 },
    primaryMetric: { name: "loss", value: 0.123456 },
    ...over,
  };
}

test("durations read as seconds, then m:ss and h:mm:ss", () => {
  assert.equal(formatDuration(0.42), "0.4 s");
  assert.equal(formatDuration(59.94), "59.9 s");
  assert.equal(formatDuration(65), "1:05");
  assert.equal(formatDuration(3723), "1:02:03");
  assert.equal(formatDuration(null), "");
  assert.equal(formatDuration(-1), "");
});

test("a run's row: number, status, duration and primary metric", () => {
  assert.deepEqual(runLabel(run()), { label: "Run 3", description: "Completed · 12.5 s · loss 0.1235" });
  const live = runLabel(run({ status: "Running", endTime: null, durationSeconds: null }), 130);
  assert.equal(live.description, "Running · 30.0 s · loss 0.1235"); // the clock keeps going
  const child = runLabel(run({ parentRunId: "HD_1", runId: "HD_1_4", primaryMetric: null }));
  assert.deepEqual(child, { label: "HD_1_4", description: "Completed · 12.5 s" });
  assert.equal(formatMetric(3), "3");
  assert.equal(formatMetric(1234567.891), "1235000");
});

test("every status has an icon; unknown ones wait", () => {
  assert.equal(statusIcon("Completed").id, "pass");
  assert.equal(statusIcon("Failed").id, "error");
  assert.equal(statusIcon("Canceled").id, "circle-slash");
  assert.equal(statusIcon("Running").id, "sync~spin");
  assert.equal(statusIcon("Queued").id, "clock");
});

test("the job file is in ferry submit's format, awkward values quoted", () => {
  const text = jobFileText({
    experiment: "my-exp",
    script: "train.py",
    arguments: ["--alpha", "0.5", "two words", "yes", ""],
    computeTarget: "local",
    environment: "requirements.txt",
  });
  assert.equal(
    text.split("\n").slice(1).join("\n"),
    [
      "experiment: my-exp",
      "source_directory: .",
      "script: train.py",
      'arguments: ["--alpha", "0.5", "two words", "yes", ""]',
      "compute_target: local",
      "environment: requirements.txt",
      "",
    ].join("\n"),
  );
  assert.ok(text.startsWith("# ferry job file"));
  assert.ok(!jobFileText({ script: "t.py", arguments: [], computeTarget: "local" }).includes("experiment:"));
  assert.equal(yamlScalar('a "quote"'), '"a \\"quote\\""');
  assert.equal(yamlScalar("null"), '"null"');
  assert.equal(jobFileName("train.py"), "train.job.yml");
});

test("arguments split like a shell, without expansion", () => {
  assert.deepEqual(splitArguments(""), []);
  assert.deepEqual(splitArguments("--alpha 0.5  --name 'a b' \"c \\\"d\\\"\" e\\ f"), [
    "--alpha",
    "0.5",
    "--name",
    "a b",
    'c "d"',
    "e f",
  ]);
  assert.deepEqual(splitArguments("''"), [""]);
  assert.throws(() => splitArguments("'open"), /unclosed ' quote/);
});

test("tags typed in one line become what to set and what to remove", () => {
  const before = { team: "a", solo: null, old: "x" };
  assert.equal(tagsText(before), "team=a, solo, old=x");
  assert.deepEqual(tagChanges(before, "team=b, solo, new"), { set: ["team=b", "new"], remove: ["old"] });
  assert.deepEqual(tagChanges(before, tagsText(before)), { set: [], remove: [] });
  assert.throws(() => tagChanges({}, "=v"), /needs a name/);
});

test("the default experiment is the folder's name as ferry spells it", () => {
  assert.equal(folderExperiment("demo project"), "demo-project");
  assert.equal(folderExperiment("_x"), "x");
  assert.equal(folderExperiment("ü"), "default");
});
