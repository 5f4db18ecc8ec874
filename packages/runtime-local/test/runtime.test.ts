import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { keys, SpecError, type GroveTask } from "@canopy/core";
import { afterEach, describe, expect, it } from "vitest";
import { DiskLedger, InterruptedError, LocalQueue, type BuildOutcome, type ProgressEvent } from "../src/index.ts";
import { deliveries, digits, digitsSpec, recordingRuntime, referenceModel, removeTempDirs, tempDir } from "./support/helpers.ts";

afterEach(removeTempDirs);

function completed(outcome: BuildOutcome) {
  if (outcome.status !== "COMPLETED") throw new Error(`expected COMPLETED, got FAILED: ${outcome.reason}`);
  return outcome;
}

const modelBytes = (outcome: BuildOutcome) => readFileSync(completed(outcome).modelPath);
const progressOf = (events: ProgressEvent[]) => events.filter((e): e is Extract<ProgressEvent, { type: "progress" }> => e.type === "progress");

/** An HTTP endpoint that records the JSON bodies POSTed to it. */
async function webhook() {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      bodies.push({ method: req.method, type: req.headers["content-type"], json: JSON.parse(body) });
      res.end("ok");
    });
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, bodies, close: () => new Promise((done) => server.close(done)) };
}

describe("the embedded runtime, end to end on digits with real trainer threads", () => {
  it("makes byte-identical models with 1 or 2 workers and groves of 5, 10 or 25, with one notification each", async () => {
    const hook = await webhook();
    try {
      const reference = await referenceModel(digitsSpec(10));
      const runs: [workers: number, groveSize: number, notifyUrl?: string][] = [
        [1, 10, "http://127.0.0.1:9/unreachable"],
        [2, 10],
        [2, 5],
        [2, 25, hook.url],
      ];
      for (const [workers, groveSize, notifyUrl] of runs) {
        const root = await tempDir();
        const { runtime, events, notifications, warnings } = recordingRuntime({ root, workers, ...(notifyUrl ? { notifyUrl } : {}) });
        try {
          const outcome = completed(await runtime.train(digitsSpec(groveSize), digits));
          const groves = 50 / groveSize;
          const label = `${workers} worker(s), groves of ${groveSize}`;
          expect(modelBytes(outcome).equals(reference), label).toBe(true);

          expect(notifications, label).toHaveLength(1);
          expect(notifications[0]).toMatchObject({ type: "build.completed", buildId: outcome.buildId, modelKey: keys.model(outcome.buildId) });
          expect(outcome.notification).toEqual(notifications[0]);

          const { report } = outcome;
          expect(report.groves.map((g) => [g.grove, g.treeStart, g.treeEnd])).toEqual(
            Array.from({ length: groves }, (_, g) => [g, g * groveSize, (g + 1) * groveSize]),
          );
          for (const g of report.groves) {
            expect(g.trainMs).toBe(g.trainedAt - g.loadedAt);
            expect(g.landedAt).toBeGreaterThanOrEqual(g.storedAt);
            expect(g.bytes).toBe(readFileSync(join(root, keys.grove(outcome.buildId, g.grove))).length);
            expect(g.packCached, "trainers use the shared pack, not the stored one").toBe(true);
          }
          expect(report.model.trees).toBe(50);
          // One timeline row per trainer thread; every grove landed on its first delivery.
          const workersSeen = new Set(report.groves.map((g) => g.worker));
          expect([...workersSeen].every((w) => /^thread-\d+$/.test(w ?? "")), label).toBe(true);
          expect(workersSeen.size, label).toBeLessThanOrEqual(workers);
          expect(report.groves.filter((g) => g.attempt !== undefined)).toEqual([]);

          const progress = progressOf(events);
          expect(progress[0]).toMatchObject({ landed: 0, total: groves, treesDone: 0, treesTotal: 50 });
          expect(progress.slice(1).map((p) => p.landed)).toEqual(Array.from({ length: groves }, (_, i) => i + 1));
          expect(progress.at(-1)).toMatchObject({ landed: groves, failed: 0, treesDone: 50 });
          expect(progress.slice(1).every((p) => p.grove?.outcome === "landed" && p.grove.stats.trees === groveSize)).toBe(true);
          expect(events.filter((e) => e.type === "stage").map((e) => e.type === "stage" && e.stage)).toEqual(["preparing", "training", "aggregating", "done"]);

          if (notifyUrl === hook.url) expect(hook.bodies).toEqual([{ method: "POST", type: "application/json", json: notifications[0] }]);
          else if (notifyUrl) expect(warnings).toEqual([expect.stringMatching(/^notification POST to http:\/\/127\.0\.0\.1:9\/unreachable failed/)]);
          else expect(warnings).toEqual([]);

          if (workers === 1) {
            // The same data and spec again: the finished build comes back, nothing is trained or announced.
            const again = completed(await runtime.train(digitsSpec(groveSize), digits));
            expect(again.buildId).toBe(outcome.buildId);
            expect(again.notification).toBeUndefined();
            expect(notifications).toHaveLength(1);
            expect(again.record).toEqual(outcome.record);
          }
        } finally {
          await runtime.close();
        }
      }
    } finally {
      await hook.close();
    }
  });

  it("changes nothing when every task is delivered twice", async () => {
    class DuplicatingQueue extends LocalQueue {
      override send(tasks: GroveTask[]) {
        return super.send([...tasks, ...tasks]);
      }
    }
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const { runtime, notifications } = recordingRuntime({ root, workers: 2, queue: new DuplicatingQueue(), log });
    try {
      const outcome = completed(await runtime.train(digitsSpec(10), digits));
      expect(modelBytes(outcome).equals(await referenceModel(digitsSpec(10)))).toBe(true);
      expect(notifications).toHaveLength(1);
      expect(outcome.record.landed).toEqual([0, 1, 2, 3, 4]);
      expect(outcome.report.groves).toHaveLength(5);
      // Every grove was really delivered twice (the second is skipped or lands nothing).
      await runtime.close();
      const seen = deliveries(log).map((d) => d.split(":")[0]);
      for (let g = 0; g < 5; g++) expect(seen.filter((s) => s === String(g)), `grove ${g}`).toHaveLength(2);
    } finally {
      await runtime.close();
    }
  });

  it("retries a task that throws once, and the build completes with the same model", async () => {
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const { runtime, events, notifications } = recordingRuntime({ root, workers: 2, log, faults: { 1: 1 } });
    try {
      const outcome = completed(await runtime.train(digitsSpec(10), digits));
      expect(modelBytes(outcome).equals(await referenceModel(digitsSpec(10)))).toBe(true);
      expect(deliveries(log).filter((d) => d.startsWith("1:"))).toEqual(["1:1:fail", "1:2:ok"]);
      expect(outcome.report.groves.map((g) => g.attempt ?? 1)).toEqual([1, 2, 1, 1, 1]);
      expect(outcome.record.failed).toEqual([]);
      expect(progressOf(events).some((p) => p.failed > 0)).toBe(false);
      expect(notifications).toHaveLength(1);
    } finally {
      await runtime.close();
    }
  });

  it("dead-letters a task that always throws after maxReceives and fails the build (tolerance 0), notifying once", async () => {
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const { runtime, events, notifications } = recordingRuntime({ root, workers: 2, log, faults: { 2: "always" } });
    try {
      const outcome = await runtime.train(digitsSpec(10), digits);
      expect(outcome.status).toBe("FAILED");
      if (outcome.status !== "FAILED") return;
      expect(outcome.reason).toBe("1 of 5 groves failed (tolerated 0); grove 2: injected fault in grove 2");
      expect(deliveries(log).filter((d) => d.startsWith("2:"))).toEqual(["2:1:fail", "2:2:fail", "2:3:fail"]);
      expect(notifications).toHaveLength(1);
      expect(notifications[0]).toMatchObject({ type: "build.failed", status: "FAILED", buildId: outcome.buildId, failedGroves: [{ grove: 2, error: "injected fault in grove 2" }] });
      expect(outcome.notification).toEqual(notifications[0]);
      expect(progressOf(events).find((p) => p.grove?.outcome === "failed")).toMatchObject({ failed: 1, grove: { grove: 2, outcome: "failed" } });
      const record = await new DiskLedger(root).get(outcome.buildId);
      expect(record?.status).toBe("FAILED");
      expect(readFileSync(join(root, "ledger", `${outcome.buildId}.json`), "utf8")).toContain('"FAILED"');
    } finally {
      await runtime.close();
    }
  });

  it("within tolerance, completes with the groves it has; an input error is dead-lettered at once", async () => {
    const root = await tempDir();
    const log = join(root, "deliveries.log");
    const spec = digitsSpec(10, { tolerated_failures: 1 });
    const { runtime, notifications } = recordingRuntime({ root, workers: 2, log, faults: { 3: "bad-input" } });
    try {
      const outcome = completed(await runtime.train(spec, digits));
      expect(deliveries(log).filter((d) => d.startsWith("3:"))).toEqual(["3:1:fail"]);
      expect(outcome.report.missingGroves).toEqual([{ grove: 3, treeStart: 30, treeEnd: 40, error: "CanopyError: grove 3 has bad input" }]);
      expect(outcome.report.model.trees).toBe(40);
      const kept = Array.from({ length: 50 }, (_, t) => t).filter((t) => t < 30 || t >= 40);
      expect(modelBytes(outcome).equals(await referenceModel(spec, kept))).toBe(true);
      expect(notifications).toHaveLength(1);
      expect(notifications[0]).toMatchObject({ type: "build.completed", failedGroves: [{ grove: 3 }] });
    } finally {
      await runtime.close();
    }
  });

  it("resumes a build stopped half-way into the same bytes, training only the groves that had not landed", async () => {
    const root = await tempDir();
    const spec = digitsSpec(5);
    let closing: Promise<void> | undefined;
    const interrupted = recordingRuntime({
      root,
      workers: 1,
      // Like Ctrl-C after the third landing.
      onProgress: (e) => {
        if (e.type === "progress" && e.landed >= 3 && !closing) closing = interrupted.runtime.close();
      },
    });
    await expect(interrupted.runtime.train(spec, digits)).rejects.toThrow(InterruptedError);
    await closing;
    const buildId = (await new DiskLedger(root).list())[0].buildId;
    const stopped = await new DiskLedger(root).get(buildId);
    expect(stopped?.status).toBe("TRAINING");
    expect(stopped!.landed.length).toBeGreaterThanOrEqual(3);
    expect(stopped!.landed.length).toBeLessThan(10);
    expect(interrupted.notifications).toEqual([]);

    const log = join(root, "deliveries.log");
    const second = recordingRuntime({ root, workers: 2, log });
    try {
      const outcome = completed(await second.runtime.resume(buildId));
      expect(modelBytes(outcome).equals(await referenceModel(spec))).toBe(true);
      const retrained = deliveries(log).map((d) => Number(d.split(":")[0])).sort((a, b) => a - b);
      const outstanding = Array.from({ length: 10 }, (_, g) => g).filter((g) => !stopped!.landed.includes(g));
      expect(retrained).toEqual(outstanding);
      expect(progressOf(second.events)[0]).toMatchObject({ landed: stopped!.landed.length, total: 10 });
      expect(second.notifications).toHaveLength(1);
      expect(outcome.report.groves).toHaveLength(10);
    } finally {
      await second.runtime.close();
    }
  });

  it("resumes a build whose aggregator died mid-way: aggregates again into the same bytes, without retraining", async () => {
    const root = await tempDir();
    const spec = digitsSpec(5);
    const first = recordingRuntime({ root, workers: 2 });
    let buildId: string;
    try {
      buildId = completed(await first.runtime.train(spec, digits)).buildId;
    } finally {
      await first.runtime.close();
    }
    // What a crash after the claim leaves: the record AGGREGATING, no result, no model or report written yet.
    const ledgerFile = join(root, "ledger", `${buildId}.json`);
    const { result: _result, ...record } = JSON.parse(readFileSync(ledgerFile, "utf8"));
    writeFileSync(ledgerFile, JSON.stringify({ ...record, status: "AGGREGATING" }));
    rmSync(join(root, keys.model(buildId)));
    rmSync(join(root, keys.report(buildId)));

    const log = join(root, "deliveries.log");
    const second = recordingRuntime({ root, workers: 2, log });
    try {
      const outcome = completed(await second.runtime.resume(buildId));
      expect(modelBytes(outcome).equals(await referenceModel(spec))).toBe(true);
      expect(deliveries(log)).toEqual([]); // every grove had landed: nothing is trained again
      expect(second.notifications).toHaveLength(1);
      expect((await new DiskLedger(root).get(buildId))?.status).toBe("COMPLETED");
    } finally {
      await second.runtime.close();
    }
  });

  it("closed while preparing, the build is left for later; training the same spec again picks it up", async () => {
    const root = await tempDir();
    const spec = digitsSpec(25);
    const first = recordingRuntime({ root, workers: 1 });
    const training = first.runtime.train(spec, digits);
    await first.runtime.close();
    const error = await training.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InterruptedError);
    const buildId = (error as InterruptedError).buildId;
    expect((await new DiskLedger(root).get(buildId))).toMatchObject({ status: "TRAINING", landed: [] });

    const second = recordingRuntime({ root, workers: 2 });
    try {
      const outcome = completed(await second.runtime.train(spec, digits));
      expect(outcome.buildId).toBe(buildId);
      expect(modelBytes(outcome).equals(await referenceModel(spec))).toBe(true);
      expect(second.notifications).toHaveLength(1);
    } finally {
      await second.runtime.close();
    }
  });

  it("rejects a bad spec with SpecError and an unknown build on resume, and refuses work once closed", async () => {
    const root = await tempDir();
    const { runtime } = recordingRuntime({ root, workers: 1 });
    await expect(runtime.train(digitsSpec(10, { grove_size: 60 }), digits)).rejects.toThrow(SpecError);
    await expect(runtime.train(digitsSpec(10, { criterion: "squared_error" }), digits)).rejects.toThrow(/^criterion: "squared_error" is for regression/);
    await expect(runtime.resume("b-0000000000000000")).rejects.toThrow(/^build b-0000000000000000 not found in /);
    await runtime.close();
    await expect(runtime.train(digitsSpec(10), digits)).rejects.toThrow("the runtime is closed");
  });
});
