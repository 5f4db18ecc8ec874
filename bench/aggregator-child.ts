// One aggregation measured in a fresh process: `tsx bench/aggregator-child.ts <root> <buildId> <mode>` aggregates a
// finished build's groves again (from the local store at <root>) and prints JSON with the peak RSS.
// - stream: core's aggregate() as the aggregator runs it: groves one at a time, the model streamed to a file.
// - whole:  the way the aggregator did it before (kept here to measure against): every grove decoded and held, merged
//           into one Forest, encoded into one buffer, evaluated tree by tree.
// - pack:   only the modules and the dataset pack loaded: what any aggregation holds whatever the model.
// Writes go to <root>/bench-aggregate/, never over the store's own model.
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { aggregate, evaluateByTrees, keys, newBuildRecord, readManifest, splitRows, verifiedPack, type BlobStore } from "@canopy/core";
import { MemoryLedger } from "@canopy/core/testing";
import { Forest } from "@canopy/forest";
import { DiskBlobStore, DiskLedger } from "@canopy/runtime-local";

/**
 * This process's own peak RSS: VmHWM (Linux). Not getrusage's maxRSS: Linux carries the parent's RSS at fork into a
 * child's maxRSS across exec, so a child of a big parent would report the parent's size.
 */
function peakRssMb(): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

const [root, buildId, mode] = process.argv.slice(2);
const store = new DiskBlobStore(root, { fsync: false });
const scratch = new DiskBlobStore(join(root, "bench-aggregate"), { fsync: false });
mkdirSync(join(root, "bench-aggregate"), { recursive: true });
const record = (await new DiskLedger(root).get(buildId))!;
const manifest = await readManifest(store, buildId);
const started = performance.now();
const out: Record<string, unknown> = { mode, groves: record.landed.length };
const isOutput = (key: string) => key === keys.model(buildId) || key === keys.report(buildId) || key === keys.reportHtml(buildId);
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

if (mode === "stream") {
  // The finished build's groves landed again in a fresh ledger, nothing aggregated: what the aggregator is handed.
  const ledger = new MemoryLedger();
  await ledger.create(newBuildRecord({ buildId, total: record.total, tolerated: record.tolerated, tags: record.tags, now: record.createdAt }));
  await ledger.startTraining(buildId);
  for (const g of record.landed) await ledger.landGrove(buildId, g, record.groveStats[g]);
  const blobs: BlobStore = {
    get: (key) => (isOutput(key) ? scratch.get(key) : store.get(key)),
    exists: (key) => (isOutput(key) ? scratch.exists(key) : store.exists(key)),
    put: (key, bytes, type) => (isOutput(key) ? scratch.put(key, bytes, type) : Promise.reject(new Error(`bench: no write to ${key}`))),
    putStream: (key, chunks, type) => (isOutput(key) ? scratch.putStream(key, chunks, type) : Promise.reject(new Error(`bench: no write to ${key}`))),
  };
  const outcome = await aggregate(buildId, { blobs, ledger, notifier: { publish: async () => {} } });
  if (outcome.outcome !== "completed") throw new Error(`aggregation ${outcome.outcome}: ${"reason" in outcome ? outcome.reason : ""}`);
  // Measured before the check below, which reads the model file back (streamed, but let nothing of it count).
  out.maxRssMb = peakRssMb();
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(scratch.path(keys.model(buildId)), { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  Object.assign(out, {
    modelBytes: outcome.report.model.bytes,
    modelSha256: hash.digest("hex"),
    accuracy: outcome.report.metrics && "accuracy" in outcome.report.metrics ? outcome.report.metrics.accuracy : null,
  });
} else if (mode === "whole") {
  const pack = verifiedPack((await store.get(manifest.packKey))!, manifest.packKey, manifest.packHash);
  const groves: Forest[] = [];
  for (const g of record.landed) groves.push(Forest.load((await store.get(keys.grove(buildId, g)))!));
  const forest = Forest.merge(groves).withSchema(pack.schema);
  const model = forest.toBinary();
  const split = splitRows(pack.nRows, manifest.spec.test_fraction, manifest.spec.seed);
  const held = evaluateByTrees(forest, pack, split.test);
  writeFileSync(join(root, "bench-aggregate", "whole.canopy"), model);
  Object.assign(out, { modelBytes: model.length, modelSha256: sha(model), accuracy: held.metrics.task === "classification" ? held.metrics.accuracy : null });
} else if (mode === "pack") {
  const pack = verifiedPack((await store.get(manifest.packKey))!, manifest.packKey, manifest.packHash);
  Object.assign(out, { packBytes: pack.bytes.length });
} else throw new Error(`mode must be stream, whole or pack; got ${mode}`);

out.largestGroveBytes = Math.max(...record.landed.map((g) => record.groveStats[g].bytes));
out.seconds = (performance.now() - started) / 1000;
out.maxRssMb ??= peakRssMb();
process.stdout.write(`${JSON.stringify(out)}\n`);
