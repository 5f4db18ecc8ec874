import { describeRuntimeScenario } from "@canopy/core/testing";
import { afterAll } from "vitest";
import { createLocalRuntime } from "../src/index.ts";
import { digits, digitsSpec, removeTempDirs, tempDir } from "./support/helpers.ts";

afterAll(removeTempDirs);

// One trainer thread, so an interruption after the first landing leaves most groves outstanding.
const open = (root: string) => {
  const runtime = createLocalRuntime({ root, workers: 1, fsync: false, onNotify: () => {} });
  return { runtime, blobs: runtime.blobs };
};
let root: string;

describeRuntimeScenario("the embedded runtime", {
  async open() {
    root = await tempDir();
    return open(root);
  },
  // What Ctrl-C or a crash does: the process stops; the next one on the same store resumes.
  async interrupt(runtime) {
    await runtime.close();
    return open(root);
  },
  data: digits,
  spec: digitsSpec(10),
  interruptedSpec: digitsSpec(5, { seed: 12 }),
  extension: { spec: digitsSpec(10, { n_estimators: 40 }), trees: 100 },
});
