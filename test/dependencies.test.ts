/**
 * The import rules in .dependency-cruiser.cjs: the repository keeps them, and each rule really catches what it
 * forbids (checked on a scratch tree that breaks every one).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const REPO = path.resolve(import.meta.dirname, "..");
const DEPCRUISE = path.join(REPO, "node_modules", "dependency-cruiser", "bin", "dependency-cruise.mjs");

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
  cycle?: { name: string }[];
}

/** Runs dependency-cruiser with the repo's rules over `dirs` of `cwd`; returns the violations as "rule: from → to". */
function violations(cwd: string, dirs: string[]): string[] {
  const run = spawnSync(process.execPath, [DEPCRUISE, ...dirs, "--config", path.join(REPO, ".dependency-cruiser.cjs"), "--output-type", "json"], {
    cwd,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (run.status === null || !run.stdout.startsWith("{")) throw new Error(`depcruise failed (${run.status}): ${run.stderr.trim().slice(0, 500)}`);
  const { summary } = JSON.parse(run.stdout) as { summary: { violations: Violation[] } };
  return summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe("import rules", () => {
  it("the repository keeps every rule", () => {
    expect(violations(REPO, ["packages", "bench", "test", "scripts"])).toEqual([]);
  }, 120_000);

  it("each rule catches what it forbids", () => {
    const root = mkdtempSync(path.join(tmpdir(), "canopy-deps-"));
    scratch.push(root);
    cpSync(path.join(REPO, "tsconfig.json"), path.join(root, "tsconfig.json"));
    const files: Record<string, string> = {
      // The engine reaching up a layer, into I/O and threads, a bundler and the second engine.
      "packages/forest/src/index.ts": [
        'import { x } from "../../core/src/x.ts";',
        'import { Worker } from "node:worker_threads";',
        'import { readFileSync } from "fs";',
        'import { build } from "esbuild";',
        'import { RandomForestClassifier } from "ml-random-forest";',
        "export const all = [x, Worker, readFileSync, build, RandomForestClassifier];",
      ].join("\n"),
      // A circle of types.
      "packages/core/src/x.ts": 'import type { Y } from "./y.ts";\nexport type X = Y;\nexport const x = 1;',
      "packages/core/src/y.ts": 'import type { X } from "./x.ts";\nexport type Y = X | 1;',
      // A runtime reaching up to the handlers, and commands importing each other.
      "packages/serving/src/index.ts": 'import { handler } from "../../functions/src/index.ts";\nexport { handler };',
      "packages/functions/src/index.ts": "export const handler = 1;",
      "packages/cli/src/commands/serve.ts": 'import { train } from "./train.ts";\nexport const serve = train;',
      "packages/cli/src/commands/publish.ts": 'import { train } from "./train.ts";\nimport { serve } from "./serve.ts";\nexport const publish = [train, serve];',
      "packages/cli/src/commands/train.ts": "export const train = 1;",
      // bench and test may import anything.
      "bench/run.ts": 'import { all } from "../packages/forest/src/index.ts";\nimport { serve } from "../packages/cli/src/commands/serve.ts";\nexport default [all, serve];',
    };
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), `${text}\n`);
    }
    expect(violations(root, ["packages", "bench"])).toEqual([
      "cli-commands-apart: packages/cli/src/commands/publish.ts → packages/cli/src/commands/serve.ts",
      "cli-commands-apart: packages/cli/src/commands/publish.ts → packages/cli/src/commands/train.ts",
      "cli-commands-apart: packages/cli/src/commands/serve.ts → packages/cli/src/commands/train.ts",
      "forest-no-tooling-or-second-engine: packages/forest/src/index.ts → esbuild",
      "forest-no-tooling-or-second-engine: packages/forest/src/index.ts → ml-random-forest",
      "forest-pure: packages/forest/src/index.ts → fs",
      "forest-pure: packages/forest/src/index.ts → worker_threads",
      "layers-forest: packages/forest/src/index.ts → packages/core/src/x.ts",
      "layers-serving: packages/serving/src/index.ts → packages/functions/src/index.ts",
      "no-circular: packages/core/src/x.ts → packages/core/src/y.ts",
    ]);
  }, 120_000);
});
