// Bundles the extension (out/extension.js, `vscode` left to the host) with esbuild; with
// --tests, bundles each test/*.test.ts into out-test/ with `vscode` replaced by the fake.
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";

const tests = process.argv.includes("--tests");
if (tests) {
  const entries = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  await esbuild.build({
    entryPoints: entries,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    outdir: "out-test",
    alias: { vscode: "./test/fake-vscode.ts" },
    logLevel: "warning",
  });
} else {
  await esbuild.build({
    entryPoints: ["src/extension.ts"],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    outfile: "out/extension.js",
    external: ["vscode"],
    minify: process.argv.includes("--minify"),
    sourcemap: false,
    logLevel: "warning",
  });
}
