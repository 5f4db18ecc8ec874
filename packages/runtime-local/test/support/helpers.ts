import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBuildSpec, prepareDataset, splitRows, toFitParams, type BuildNotification } from "@canopy/core";
import { MemoryBlobStore } from "@canopy/core/testing";
import { fitForest } from "@canopy/forest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleFile, ROOT } from "../../../../scripts/build.ts";
import { createLocalRuntime, type LocalRuntimeOptions, type ProgressEvent } from "../../src/index.ts";
import type { Fault, FaultData } from "./faulty-trainer.ts";

/** The fault-injecting trainer thread, compiled (worker threads run JavaScript) where its imports resolve. */
const FAULTY_TRAINER = join(ROOT, "node_modules", ".cache", "canopy", "faulty-trainer.mjs");
await bundleFile(fileURLToPath(new URL("./faulty-trainer.ts", import.meta.url)), FAULTY_TRAINER);

export const DIGITS_PATH = new URL("../../../../test/fixtures/digits.csv", import.meta.url);
export const digits = readFileSync(DIGITS_PATH);

export function digitsSpec(groveSize: number, extra: Record<string, unknown> = {}) {
  return { dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 50, grove_size: groveSize, seed: 11, ...extra };
}

/** The model a single-threaded fitForest makes for the spec, on the same split: what every build must equal. */
export async function referenceModel(spec: Record<string, unknown>, treeIndices?: number[]): Promise<Buffer> {
  const parsed = parseBuildSpec(spec);
  const { pack } = await prepareDataset(digits, { label: "digit" }, new MemoryBlobStore());
  const { train } = splitRows(pack.nRows, parsed.test_fraction, parsed.seed);
  // A build's model is the engine's forest plus the table schema it was trained with.
  return Buffer.from(fitForest(pack, toFitParams(parsed), { rows: train, ...(treeIndices ? { treeIndices } : {}) }).withSchema(pack.schema).toBinary());
}

const roots: string[] = [];
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "canopy-runtime-"));
  roots.push(dir);
  return dir;
}
export async function removeTempDirs(): Promise<void> {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
}

/** A runtime that records what it reports; `faults` switches to the logging, fault-injecting trainer. */
export function recordingRuntime(options: LocalRuntimeOptions & { faults?: Record<number, Fault>; log?: string } = {}) {
  const events: ProgressEvent[] = [];
  const notifications: BuildNotification[] = [];
  const warnings: string[] = [];
  const { faults, log, ...rest } = options;
  const trainer =
    log !== undefined
      ? { trainer: { module: pathToFileURL(FAULTY_TRAINER), data: { log, faults: faults ?? {} } satisfies FaultData } }
      : {};
  const runtime = createLocalRuntime({
    onProgress: (e) => events.push(e),
    onNotify: (n) => notifications.push(n),
    onWarning: (w) => warnings.push(w),
    ...trainer,
    ...rest,
  });
  return { runtime, events, notifications, warnings };
}

/** Deliveries the faulty trainer saw, as "grove:receiveCount:ok|fail". */
export function deliveries(log: string): string[] {
  return existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : [];
}
