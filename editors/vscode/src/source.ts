// Where the tree's answers and the interpreter come from: the ferry CLI (--json) and the
// Python extension's selected interpreter.

import * as vscode from "vscode";
import { Ferry } from "./cli";
import { Page, TreeSource, WorkspaceInfo } from "./tree";

/** The Python extension's selected interpreter, when that extension is installed. */
export async function pythonInterpreter(): Promise<string | null> {
  const ext = vscode.extensions.getExtension("ms-python.python");
  if (!ext) {
    return null;
  }
  try {
    const api = (ext.isActive ? ext.exports : await ext.activate()) as {
      environments?: { getActiveEnvironmentPath?: (r?: vscode.Uri) => { path?: string } | undefined };
      settings?: { getExecutionDetails?: (r?: vscode.Uri) => { execCommand?: string[] } | undefined };
    };
    const resource = vscode.workspace.workspaceFolders?.[0]?.uri;
    return (
      api.environments?.getActiveEnvironmentPath?.(resource)?.path ??
      api.settings?.getExecutionDetails?.(resource)?.execCommand?.[0] ??
      null
    );
  } catch {
    return null;
  }
}

/** The tree's questions, as ferry commands. */
export class CliSource implements TreeSource {
  constructor(private readonly ferry: Ferry) {}
  workspace(): Promise<WorkspaceInfo> {
    return this.ferry.json<WorkspaceInfo>(["workspace", "show"]);
  }
  experiments(): Promise<{ name: string }[]> {
    return this.ferry.json(["experiments", "list"]);
  }
  runs(experiment: string, offset: number, limit: number): Promise<Page> {
    return this.ferry.json(["runs", "list", "-e", experiment, "-n", String(limit), "--offset", String(offset), "--page"]);
  }
  children(runId: string, offset: number, limit: number): Promise<Page> {
    return this.ferry.json(["runs", "list", "--parent", runId, "-n", String(limit), "--offset", String(offset), "--page"]);
  }
  targets(): Promise<{ name: string; type: string }[]> {
    return this.ferry.json(["target", "list"]);
  }
  async environments(): Promise<{ name: string; version: number | null; curated: boolean }[]> {
    return (await this.ferry.json<{ environments: { name: string; version: number | null; curated: boolean }[] }>(["env", "list"])).environments;
  }
  datasets(): Promise<{ name: string; version?: number }[]> {
    return this.ferry.json(["data", "list"]);
  }
  models(): Promise<{ name: string; version?: number }[]> {
    return this.ferry.json(["models", "list"]);
  }
}

