// What the extension shows and writes, as plain functions (no `vscode` import): the status
// icons, durations and metric labels of the tree, the job file a submit saves, the tags a user
// types. Kept apart so node's test runner checks them without a VS Code.

/** One run as `ferry runs list --json` prints it (src/ferry/cli/run_pages.py). */
export interface RunSummary {
  runId: string;
  experiment: string;
  status: string;
  target: string;
  parentRunId: string | null;
  runType: string;
  number: number | null;
  displayName: string | null;
  createdAt: number;
  startTime: number | null;
  endTime: number | null;
  durationSeconds: number | null;
  tags: Record<string, string | null>;
  metrics: Record<string, number>;
  primaryMetric: { name: string; value: number } | null;
}

/** The choices of a submit, as saved in the job file beside the script. */
export interface JobChoices {
  experiment?: string;
  script: string; // relative to the job file's folder (posix)
  arguments: string[];
  computeTarget: string;
  environment?: string; // NAME[:VERSION] or a file next to the script; none: this interpreter
}

const TERMINAL = new Set(["Completed", "Failed", "Canceled"]);

export function isTerminal(status: string): boolean {
  return TERMINAL.has(status);
}

/** The codicon and theme colour of a status. */
export function statusIcon(status: string): { id: string; color?: string } {
  switch (status) {
    case "Completed":
      return { id: "pass", color: "testing.iconPassed" };
    case "Failed":
      return { id: "error", color: "testing.iconFailed" };
    case "Canceled":
    case "CancelRequested":
      return { id: "circle-slash", color: "disabledForeground" };
    case "Running":
    case "Finalizing":
      return { id: "sync~spin", color: "charts.blue" };
    default: // NotStarted, Queued, Preparing, Starting, Provisioning
      return { id: "clock", color: "charts.yellow" };
  }
}

/** 0.4 s, 12.3 s, 4:05, 1:02:03. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return "";
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** A metric value short enough for a tree row (4 significant digits). */
export function formatMetric(value: number | string): string {
  if (typeof value !== "number") {
    return String(value);
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e9) {
    return String(value);
  }
  return Number(value.toPrecision(4)).toString();
}

/** The tree row of a run: its label and the description after it. */
export function runLabel(run: RunSummary, now: number = Date.now() / 1000): { label: string; description: string } {
  // the id is long and alike within an experiment: the number first, the id in the tooltip
  const label = run.displayName || (run.number !== null && !run.parentRunId ? `Run ${run.number}` : run.runId);
  let duration = run.durationSeconds;
  if (!isTerminal(run.status) && run.startTime !== null) {
    duration = now - run.startTime; // a live run's clock keeps going between refreshes
  }
  const parts = [run.status];
  const shown = formatDuration(duration);
  if (shown) {
    parts.push(shown);
  }
  if (run.primaryMetric) {
    parts.push(`${run.primaryMetric.name} ${formatMetric(run.primaryMetric.value)}`);
  }
  return { label, description: parts.join(" · ") };
}

/** A YAML scalar: JSON strings are YAML too, so anything that is not plain is JSON-quoted. */
export function yamlScalar(value: string): string {
  return /^[A-Za-z0-9_./][A-Za-z0-9_./:=+-]*$/.test(value) && !/^(true|false|null|yes|no|on|off|~)$/i.test(value) && !/^[0-9.+-]/.test(value)
    ? value
    : JSON.stringify(value);
}

/** The job file `ferry submit job.yml` reads (src/ferry/jobfile.py), with the choices made. */
export function jobFileText(job: JobChoices): string {
  const lines = [
    "# ferry job file: `ferry submit <this file>` runs it; 'ferry: Submit Again' in VS Code reuses it",
  ];
  if (job.experiment) {
    lines.push(`experiment: ${yamlScalar(job.experiment)}`);
  }
  lines.push("source_directory: .");
  lines.push(`script: ${yamlScalar(job.script)}`);
  lines.push(`arguments: [${job.arguments.map(yamlScalar).join(", ")}]`);
  lines.push(`compute_target: ${yamlScalar(job.computeTarget)}`);
  if (job.environment) {
    lines.push(`environment: ${yamlScalar(job.environment)}`);
  }
  return lines.join("\n") + "\n";
}

/** The name ferry gives an experiment from a folder's name (shown as the default pick; the
 * job file then names none and ferry decides: src/ferry/cli/submit.py _default_experiment). */
export function folderExperiment(folderName: string): string {
  const name = folderName.replace(/[^A-Za-z0-9_-]/g, "-").replace(/^[-_]+|[-_]+$/g, "").slice(0, 255) || "default";
  return /^[A-Za-z0-9]/.test(name) ? name : `x${name}`;
}

/** The job file's name beside a script: train.py → train.job.yml. */
export function jobFileName(scriptName: string): string {
  return scriptName.replace(/\.py$/, "") + ".job.yml";
}

/** Arguments typed in one line, split like a POSIX shell does for quotes (no expansion). */
export function splitArguments(text: string): string[] {
  const out: string[] = [];
  let current = "";
  let quote: string | null = null;
  let started = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) {
        quote = null;
      } else if (ch === "\\" && quote === '"' && i + 1 < text.length) {
        current += text[++i];
      } else {
        current += ch;
      }
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      started = true;
    } else if (ch === "\\" && i + 1 < text.length) {
      current += text[++i];
      started = true;
    } else if (/\s/.test(ch)) {
      if (started) {
        out.push(current);
        current = "";
        started = false;
      }
    } else {
      current += ch;
      started = true;
    }
  }
  if (quote) {
    throw new Error(`the arguments have an unclosed ${quote} quote`);
  }
  if (started) {
    out.push(current);
  }
  return out;
}

/** Tags as a user types them ("team=a, solo") → what to set and what to remove. */
export function tagChanges(
  before: Record<string, string | null>,
  typed: string,
): { set: string[]; remove: string[] } {
  const after: Record<string, string | null> = {};
  for (const part of typed.split(",")) {
    const item = part.trim();
    if (!item) {
      continue;
    }
    const eq = item.indexOf("=");
    if (eq === 0) {
      throw new Error(`tag '${item}' needs a name: KEY=VALUE or KEY`);
    }
    if (eq < 0) {
      after[item] = null;
    } else {
      after[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
    }
  }
  const set = Object.entries(after)
    .filter(([k, v]) => !(k in before) || before[k] !== v)
    .map(([k, v]) => (v === null ? k : `${k}=${v}`));
  const remove = Object.keys(before).filter((k) => !(k in after));
  return { set, remove };
}

/** Tags as the input box shows them. */
export function tagsText(tags: Record<string, string | null>): string {
  return Object.entries(tags)
    .map(([k, v]) => (v === null ? k : `${k}=${v}`))
    .join(", ");
}
