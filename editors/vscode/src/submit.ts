// "ferry: Submit Current Script": quick picks for experiment, compute target, environment and
// arguments; the choices are saved as a job file beside the script (the `ferry submit job.yml`
// format, the reference's run configuration) which "ferry: Submit Again" reuses with no questions.

import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { Ferry } from "./cli";
import { JobChoices, folderExperiment, jobFileName, jobFileText, splitArguments } from "./format";

export const LAST_JOB_KEY = "ferry.lastJobFile";

interface Pick<T> extends vscode.QuickPickItem {
  value: T;
}

/** The folder of the open workspace that holds `file`, or null (a script outside it). */
export function folderOf(file: vscode.Uri): vscode.WorkspaceFolder | null {
  return vscode.workspace.getWorkspaceFolder(file) ?? null;
}

/** Save unsaved editors first: a snapshot takes the files on disk. */
export async function saveFirst(script: vscode.Uri): Promise<boolean> {
  const dirty = vscode.workspace.textDocuments.filter((d) => d.isDirty && !d.isUntitled);
  if (!dirty.length) {
    return true;
  }
  const mine = dirty.every((d) => d.uri.fsPath.startsWith(path.dirname(script.fsPath)));
  if (mine) {
    return vscode.workspace.saveAll(false);
  }
  const answer = await vscode.window.showWarningMessage(
    `ferry: ${dirty.length} file(s) have unsaved changes; the run takes the files as saved.`,
    "Save All and Submit",
    "Submit Anyway",
  );
  if (answer === "Save All and Submit") {
    return vscode.workspace.saveAll(false);
  }
  return answer === "Submit Anyway";
}

/** Ask for the choices of a submit of `script`; null when the user backed out. */
export async function askChoices(
  ferry: Ferry,
  script: vscode.Uri,
  activeExperiment: string,
  hasWorkspace: boolean,
): Promise<JobChoices | null> {
  const folder = path.dirname(script.fsPath);
  const defaultName = path.basename(folder);
  const [experiments, targets, environments] = hasWorkspace
    ? await Promise.all([
        ferry.json<{ name: string }[]>(["experiments", "list"]).catch(() => []),
        ferry.json<{ name: string; type: string }[]>(["target", "list"]).catch(() => [{ name: "local", type: "local" }]),
        ferry
          .json<{ environments: { name: string; version: number | null; curated: boolean }[] }>(["env", "list"])
          .then((e) => e.environments)
          .catch(() => []),
      ])
    : [[], [{ name: "local", type: "local" }], []];

  // no active experiment: ferry names it after the script's folder (the job file says nothing)
  const first = activeExperiment || folderExperiment(defaultName);
  const expItems: Pick<string | null | undefined>[] = [
    activeExperiment
      ? { label: first, description: "active experiment", value: first }
      : { label: first, description: "the script folder's name", value: undefined },
    ...experiments.filter((e) => e.name !== first).map((e) => ({ label: e.name, value: e.name })),
    { label: "$(add) New experiment…", value: null },
  ];
  const experimentPick = await vscode.window.showQuickPick(expItems, {
    title: "ferry: experiment (1/4)",
    placeHolder: "The experiment to submit to",
    ignoreFocusOut: true,
  });
  if (!experimentPick) {
    return null;
  }
  let experiment = experimentPick.value;
  if (experiment === null) {
    experiment =
      (await vscode.window.showInputBox({
        title: "ferry: new experiment",
        prompt: "Letters, digits, - and _ (up to 255)",
        value: folderExperiment(defaultName),
        ignoreFocusOut: true,
      })) ?? null;
    if (!experiment) {
      return null;
    }
  }

  const ordered = [...targets].sort((a, b) => (a.name === "local" ? -1 : b.name === "local" ? 1 : a.name.localeCompare(b.name)));
  const targetPick = await vscode.window.showQuickPick(
    ordered.map((t) => ({ label: t.name, description: t.type, value: t.name })),
    { title: "ferry: compute target (2/4)", placeHolder: "Where the script runs", ignoreFocusOut: true },
  );
  if (!targetPick) {
    return null;
  }

  const envItems: Pick<string | undefined>[] = [
    { label: "Current interpreter", description: "the Python ferry runs with, as it is", value: undefined },
  ];
  for (const file of ["requirements.txt", "environment.yml", "conda.yml"]) {
    if (fs.existsSync(path.join(folder, file))) {
      envItems.push({ label: file, description: "next to the script", value: file });
    }
  }
  for (const env of environments) {
    const spec = env.version !== null ? `${env.name}:${env.version}` : env.name;
    envItems.push({ label: spec, description: env.curated ? "curated" : "registered", value: spec });
  }
  const envPick = await vscode.window.showQuickPick(envItems, {
    title: "ferry: environment (3/4)",
    placeHolder: "The Python environment of the run",
    ignoreFocusOut: true,
  });
  if (!envPick) {
    return null;
  }

  const typed = await vscode.window.showInputBox({
    title: "ferry: arguments (4/4)",
    prompt: "Arguments for the script (quotes group words); Enter for none",
    value: "",
    ignoreFocusOut: true,
    validateInput: (text) => {
      try {
        splitArguments(text);
        return null;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    },
  });
  if (typed === undefined) {
    return null;
  }
  return {
    experiment: experiment ?? undefined,
    script: path.basename(script.fsPath),
    arguments: splitArguments(typed),
    computeTarget: targetPick.value,
    environment: envPick.value,
  };
}

/** Write the job file beside the script; returns its path. */
export function writeJobFile(script: vscode.Uri, choices: JobChoices): string {
  const file = path.join(path.dirname(script.fsPath), jobFileName(path.basename(script.fsPath)));
  fs.writeFileSync(file, jobFileText(choices), "utf8");
  return file;
}
