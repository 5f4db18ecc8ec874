import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createLocalRuntime } from "../src/index.ts";
import { removeTempDirs, tempDir } from "./support/helpers.ts";

afterEach(removeTempDirs);

describe("trainer threads", () => {
  it("refuse to start on a module Node cannot run as a worker: TypeScript, or a build that is not there", async () => {
    const root = await tempDir();
    const typescript = new URL("./support/faulty-trainer.ts", import.meta.url);
    expect(() => createLocalRuntime({ root, trainer: { module: typescript } })).toThrow(`the trainer thread must be a JavaScript module (got ${typescript.href})`);
    const missing = new URL("./support/not-built/worker.js", import.meta.url);
    expect(() => createLocalRuntime({ root, trainer: { module: missing } })).toThrow(`the trainer thread ${fileURLToPath(missing)} is missing: run \`npm run build\``);
  });
});
