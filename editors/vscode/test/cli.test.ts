import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { Ferry, LineSplitter, StreamEvent, findFerry, parseFailure } from "../src/cli";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ferry-vscode-test-"));
}

/** A real executable standing in for ferry: a shell script that prints what a test needs. */
function fakeFerry(folder: string, body: string): string {
  const file = path.join(folder, "ferry");
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test("ferry is found next to the interpreter first, then ferry.path, then PATH", () => {
  const venv = tempDir();
  const other = tempDir();
  const onPath = tempDir();
  const interpreter = path.join(venv, "python");
  fs.writeFileSync(interpreter, "", { mode: 0o755 });
  const inVenv = fakeFerry(venv, "exit 0");
  const setting = fakeFerry(other, "exit 0");
  const fromPath = fakeFerry(onPath, "exit 0");

  assert.equal(findFerry({ interpreter, settingPath: setting, envPath: onPath }).found?.command, inVenv);
  fs.unlinkSync(inVenv);
  const second = findFerry({ interpreter, settingPath: setting, envPath: onPath });
  assert.equal(second.found?.command, setting);
  assert.equal(second.found?.source, "setting ferry.path");
  assert.equal(findFerry({ interpreter: null, settingPath: "", envPath: onPath }).found?.command, fromPath);

  const none = findFerry({ interpreter, settingPath: path.join(other, "nope"), envPath: tempDir() });
  assert.equal(none.found, null);
  assert.equal(none.tried.length, 3);
  assert.match(none.tried[0], /next to the Python extension's interpreter/);
});

test("a failure is the CLI's JSON error, else its last stderr line", () => {
  const err = parseFailure('{\n  "error": "no run \'x\'; list runs", "fix": "list runs"\n}', "", 2);
  assert.equal(err.message, "no run 'x'; list runs");
  assert.equal(err.fix, "list runs");
  const plain = parseFailure("", "Traceback (most recent call last):\nferry: error: bad thing\n", 2);
  assert.equal(plain.message, "bad thing");
  assert.equal(parseFailure("", "", 9).message, "ferry exited with code 9");
});

test("lines are split across chunks", () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"a":'), []);
  assert.deepEqual(s.push('1}\n{"b":2}\n{"c"'), ['{"a":1}', '{"b":2}']);
  assert.deepEqual(s.push(":3}"), []);
  assert.deepEqual(s.end(), ['{"c":3}']);
});

test("json() passes -w and --json and throws the CLI's error", async () => {
  const folder = tempDir();
  const exe = fakeFerry(
    folder,
    `if [ "$3" = "bad" ]; then echo '{"error": "it broke", "fix": "fix it"}'; exit 2; fi\necho "[\\"$1\\", \\"$2\\", \\"$3\\", \\"$4\\"]"`,
  );
  const ferry = new Ferry({ command: exe, source: "test", interpreter: null }, folder, "/ws");
  assert.deepEqual(await ferry.json(["runs", "list"]), ["-w", "/ws", "runs", "list"]);
  await assert.rejects(ferry.json(["bad"]), (e: Error & { fix?: string }) => e.message === "it broke" && e.fix === "fix it");
});

test("stream() delivers each JSON line as it comes, and an error when the CLI dies", async () => {
  const folder = tempDir();
  const exe = fakeFerry(
    folder,
    [
      `echo '{"event": "queued", "runId": "r1", "experiment": "e", "target": "local"}'`,
      `printf '{"event": "log", "runId": "r1", "text": "epoch 0\\\\n"}\\n'`,
      "sleep 0.2",
      `echo 'not json from a library'`,
      `echo '{"event": "end", "runId": "r1", "status": "Completed"}'`,
    ].join("\n"),
  );
  const ferry = new Ferry({ command: exe, source: "test", interpreter: null }, folder);
  const events: StreamEvent[] = [];
  const stream = ferry.stream(["submit", "job.yml", "--stream"], (e) => events.push(e));
  assert.equal(await stream.done, 0);
  assert.deepEqual(
    events.map((e) => e.event),
    ["queued", "log", "end"],
  );
  assert.equal(events[1].text, "epoch 0\n");

  const dying = fakeFerry(tempDir(), "echo 'ferry: error: the target cannot be reached' >&2; exit 3");
  const errors: StreamEvent[] = [];
  const failed = new Ferry({ command: dying, source: "test", interpreter: null }, folder).stream(["x"], (e) => errors.push(e));
  assert.equal(await failed.done, 3);
  assert.equal(errors[0].error, "the target cannot be reached");
});
