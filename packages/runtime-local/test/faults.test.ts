import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { deliveries, digits, digitsSpec, recordingRuntime, referenceModel, removeTempDirs, tempDir } from "./support/helpers.ts";
import { readFileSync } from "node:fs";

afterEach(removeTempDirs);

describe("faults by policy in the embedded runtime", () => {
  it("a trainer thread that dies is an internal fault: the grove is retried on a new thread and the model is unchanged", async () => {
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const { runtime, notifications, warnings } = recordingRuntime({ root, workers: 2, log, faults: { 1: "exit" } });
    try {
      const outcome = await runtime.train(digitsSpec(10), digits);
      expect(outcome.status).toBe("COMPLETED");
      if (outcome.status !== "COMPLETED") return;
      expect(deliveries(log).filter((d) => d.startsWith("1:"))).toEqual(["1:1:fail", "1:2:ok"]);
      expect(outcome.record.failed).toEqual([]);
      expect(readFileSync(outcome.modelPath).equals(await referenceModel(digitsSpec(10)))).toBe(true);
      expect(notifications).toHaveLength(1);
      expect(warnings).toEqual([]);
    } finally {
      await runtime.close();
    }
  });

  it("a trainer holds a second grove while its first waits (one thread): the held grove ends once the next reaches it", async () => {
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const { runtime } = recordingRuntime({ root, workers: 1, log, faults: { 0: "hold" } });
    try {
      const outcome = await runtime.train(digitsSpec(25), digits);
      expect(outcome.status).toBe("COMPLETED");
      if (outcome.status !== "COMPLETED") return;
      expect(deliveries(log)).toEqual(["0:1:hold", "1:1:ok"]);
      expect(readFileSync(outcome.modelPath).equals(await referenceModel(digitsSpec(25)))).toBe(true);
    } finally {
      await runtime.close();
    }
  });
});
