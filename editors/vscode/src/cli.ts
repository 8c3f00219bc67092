// Calling the `ferry` CLI: every answer is JSON (`--json`), every failure the CLI's own
// {"error", "fix"} object, so local and server workspaces behave the same and the extension
// holds no ferry logic. No `vscode` import: the finder gets what it needs as arguments.

import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** An error the CLI reported (its message and how to fix it), or a CLI that could not run. */
export class FerryError extends Error {
  constructor(
    message: string,
    readonly fix: string | null = null,
  ) {
    super(message);
    this.name = "FerryError";
  }
}

/** How the CLI was found, for messages ("tried: …"). */
export interface Located {
  command: string; // an executable path, or "ferry" found on PATH
  source: string; // "the Python extension's interpreter /x/bin/python", "setting ferry.path", "PATH"
  interpreter: string | null;
}

/** Where to look, in order: the interpreter's folder, the setting, PATH. */
export interface FindOptions {
  interpreter: string | null;
  settingPath: string;
  envPath: string;
}

/** Find the ferry executable; null (with what was tried) when there is none. */
export function findFerry(options: FindOptions): { found: Located | null; tried: string[] } {
  const tried: string[] = [];
  if (options.interpreter) {
    const candidate = path.join(path.dirname(options.interpreter), "ferry");
    tried.push(`${candidate} (next to the Python extension's interpreter ${options.interpreter})`);
    if (isExecutable(candidate)) {
      return {
        found: { command: candidate, source: `the interpreter ${options.interpreter}`, interpreter: options.interpreter },
        tried,
      };
    }
  }
  if (options.settingPath) {
    tried.push(`${options.settingPath} (setting ferry.path)`);
    const resolved = options.settingPath.includes(path.sep)
      ? options.settingPath
      : onPath(options.settingPath, options.envPath);
    if (resolved && isExecutable(resolved)) {
      return { found: { command: resolved, source: "setting ferry.path", interpreter: options.interpreter }, tried };
    }
  }
  tried.push("ferry on PATH");
  const fromPath = onPath("ferry", options.envPath);
  if (fromPath) {
    return { found: { command: fromPath, source: "PATH", interpreter: options.interpreter }, tried };
  }
  return { found: null, tried };
}

function onPath(name: string, envPath: string): string | null {
  for (const folder of envPath.split(path.delimiter)) {
    if (folder) {
      const candidate = path.join(folder, name);
      if (isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The error a failed command printed: the CLI's JSON object, else its last stderr line. */
export function parseFailure(stdout: string, stderr: string, code: number | null): FerryError {
  const trimmed = stdout.trim();
  const lastLine = trimmed.split("\n").filter((l) => l.trim()).pop() ?? "";
  for (const candidate of [trimmed, lastLine]) {
    try {
      const data = JSON.parse(candidate) as unknown;
      if (data && typeof data === "object" && "error" in data) {
        const obj = data as { error: unknown; fix?: unknown };
        return new FerryError(String(obj.error), typeof obj.fix === "string" ? obj.fix : null);
      }
    } catch {
      // not JSON: fall through
    }
  }
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("Traceback"));
  const last = lines.pop() ?? `ferry exited with code ${code}`;
  return new FerryError(last.replace(/^ferry: error: /, ""));
}

/** Splits a byte stream into lines, keeping an unfinished last line for the next chunk. */
export class LineSplitter {
  private rest = "";

  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split("\n");
    this.rest = lines.pop() ?? "";
    return lines.filter((l) => l.trim() !== "");
  }

  end(): string[] {
    const last = this.rest.trim();
    this.rest = "";
    return last ? [last] : [];
  }
}

/** One event of `ferry submit --json --stream` / `ferry runs logs -f --json`. */
export interface StreamEvent {
  event?: "queued" | "log" | "end";
  runId?: string;
  text?: string;
  status?: string;
  experiment?: string;
  target?: string;
  details?: Record<string, unknown>;
  error?: string;
  fix?: string | null;
}

/** A running stream: its events arrive through the callback; `done` gives the exit code. */
export interface Stream {
  child: ChildProcess;
  done: Promise<number>;
  stop(): void;
}

/** Where each command's duration goes when tracing is on (the setting ferry.trace). */
let trace: ((line: string) => void) | null = null;

export function setTrace(sink: ((line: string) => void) | null): void {
  trace = sink;
}

/** A trace line of the extension's own steps (when tracing is on), with the wall clock. */
export function traceStep(what: string): void {
  trace?.(`@${Date.now()} ${what}`);
}

/** The ferry CLI at `command`, run in `cwd` with the workspace option when one is set. */
export class Ferry {
  constructor(
    readonly located: Located,
    readonly cwd: string,
    readonly workspace: string = "",
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private argv(args: string[]): string[] {
    return this.workspace ? ["-w", this.workspace, ...args] : args;
  }

  /** Run a command with --json and parse its answer; a failure throws its FerryError. */
  async json<T>(args: string[], cwd: string = this.cwd): Promise<T> {
    const full = args.includes("--json") ? args : [...args, "--json"];
    const { stdout, stderr, code } = await this.run(full, cwd);
    if (code !== 0) {
      throw parseFailure(stdout, stderr, code);
    }
    try {
      return JSON.parse(stdout) as T;
    } catch {
      throw new FerryError(`ferry ${args.join(" ")} answered with something that is not JSON: ${stdout.slice(0, 200)}`);
    }
  }

  /** Run a command for its text output (download prints paths). */
  async text(args: string[], cwd: string = this.cwd): Promise<string> {
    const { stdout, stderr, code } = await this.run(args, cwd);
    if (code !== 0) {
      throw parseFailure(stdout, stderr, code);
    }
    return stdout;
  }

  run(args: string[], cwd: string = this.cwd): Promise<{ stdout: string; stderr: string; code: number | null }> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const child = spawn(this.located.command, this.argv(args), { cwd, env: this.env });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (err) => reject(new FerryError(`cannot run ${this.located.command}: ${err.message}`)));
      child.on("close", (code) => {
        trace?.(`${Date.now() - started} ms  ferry ${args.join(" ")} (exit ${code})`);
        resolve({ stdout, stderr, code });
      });
    });
  }

  /** Start a JSON-lines command; each parsed line goes to `onEvent` as it arrives. */
  stream(args: string[], onEvent: (event: StreamEvent) => void, cwd: string = this.cwd): Stream {
    const full = args.includes("--json") ? args : [...args, "--json"];
    const started = Date.now();
    trace?.(`@${started} spawn ferry ${args.join(" ")}`);
    const child = spawn(this.located.command, this.argv(full), { cwd, env: this.env });
    const splitter = new LineSplitter();
    let first = true;
    let stderr = "";
    let settled = false; // an end or an error event was delivered
    const deliver = (line: string): void => {
      let event: StreamEvent;
      try {
        event = JSON.parse(line) as StreamEvent;
      } catch {
        return; // a line that is not JSON (a library printing): not an event
      }
      settled = settled || event.event === "end" || event.error !== undefined;
      if (trace && (first || event.event !== "log")) {
        trace(`${Date.now() - started} ms  ferry ${args.join(" ")}: ${event.event ?? "error"} @${Date.now()}`);
      }
      first = first && event.event !== "log";
      onEvent(event);
    };
    child.stdout.setEncoding("utf8").on("data", (d: string) => splitter.push(d).forEach(deliver));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const done = new Promise<number>((resolve) => {
      child.on("error", (err) => {
        onEvent({ error: `cannot run ${this.located.command}: ${err.message}`, fix: null });
        resolve(127);
      });
      child.on("close", (code) => {
        splitter.end().forEach(deliver);
        if (!settled && code !== 0) {
          // killed, or a CLI too old to answer in JSON: say what it printed
          const failure = parseFailure("", stderr, code);
          onEvent({ error: failure.message, fix: failure.fix });
        }
        resolve(code ?? 1);
      });
    });
    return { child, done, stop: () => child.kill("SIGTERM") };
  }
}
