// Seeded fuzzing of stored artifacts: random bytes of a model, a grove and a pack are damaged, and every load
// must either give back exactly what was stored or be refused with a one-line error that names the thing.
import { FormatError, Forest, Rng } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { aggregate } from "../src/aggregate.ts";
import { TaskError } from "../src/errors.ts";
import { keys } from "../src/keys.ts";
import { newBuildRecord } from "../src/ledger.ts";
import { PackCache } from "../src/pack-cache.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, submitBuild } from "../src/submit.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "../src/testing/index.ts";
import { sha256Hex } from "../src/digest.ts";
import { trainGrove } from "../src/train-grove.ts";
import { decodeGroveTask } from "../src/task.ts";
import { fixture, tickingClock } from "./support.ts";

const CASES = 300;

/** A copy of `bytes` with 1 to 4 random bytes changed (a flipped bit, or a whole random byte). */
function damaged(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; at: number[] } {
  const out = bytes.slice();
  const at: number[] = [];
  const n = 1 + rng.nextInt(4);
  for (let i = 0; i < n; i++) {
    const pos = rng.nextInt(out.length);
    const before = out[pos]!;
    out[pos] = rng.nextInt(2) === 0 ? before ^ (1 << rng.nextInt(8)) : rng.nextInt(256);
    if (out[pos] !== before) at.push(pos);
  }
  return { bytes: out, at };
}

const iris = fixture("iris");
const probe = (() => {
  const lines = new TextDecoder().decode(iris).trim().split("\n").slice(1);
  return [...lines.map((l) => l.split(",").slice(0, 4).map(Number)), [NaN, NaN, NaN, NaN], [9, 0, 7, 3]];
})();

let world: {
  blobs: MemoryBlobStore;
  ledger: MemoryLedger;
  buildId: string;
  packKey: string;
  packHash: string;
  groveKeys: string[];
};

beforeAll(async () => {
  const clock = tickingClock();
  const blobs = new MemoryBlobStore();
  const ledger = new MemoryLedger({ clock });
  const queue = new MemoryQueue();
  const prepared = await prepareDataset(iris, {}, blobs, clock);
  const spec = parseBuildSpec({ dataset: "iris.csv", n_estimators: 6, grove_size: 2, seed: 4 });
  const { buildId } = await submitBuild(spec, { blobs, ledger, queue, clock }, prepared);
  for (const body of queue.messages) expect((await trainGrove(decodeGroveTask(body), { blobs, ledger, clock })).status).toBe("landed");
  world = { blobs, ledger, buildId, packKey: prepared.packKey, packHash: prepared.hash, groveKeys: [0, 1, 2].map((g) => keys.grove(buildId, g)) };
});

/**
 * A fresh copy of the trained build, with every grove in and aggregation not yet run; `landedAs` lands one grove
 * with another digest (a trainer that stored damaged bytes records their digest).
 */
async function copyOfBuild(landedAs?: { grove: number; digest: string }): Promise<{ blobs: MemoryBlobStore; ledger: MemoryLedger }> {
  const blobs = new MemoryBlobStore();
  for (const key of world.blobs.keys()) await blobs.put(key, (await world.blobs.get(key))!);
  const ledger = new MemoryLedger({ clock: tickingClock() });
  const record = (await world.ledger.get(world.buildId))!;
  // Records start empty; the groves land again with the stats (and digests) they landed with.
  await ledger.create(newBuildRecord({ buildId: record.buildId, total: record.total, tolerated: record.tolerated, tags: record.tags, now: record.createdAt }));
  await ledger.startTraining(record.buildId);
  for (const g of record.landed)
    await ledger.landGrove(record.buildId, g, { ...record.groveStats[g], ...(landedAs?.grove === g ? { digest: landedAs.digest } : {}) });
  return { blobs, ledger };
}

describe("damaged artifacts are refused, never used", () => {
  it(`a model: ${CASES} damaged copies either load and predict identically or are refused with a FormatError`, async () => {
    const reference = await copyOfBuild();
    const outcome = await aggregate(world.buildId, { ...reference, notifier: new MemoryNotifier(), clock: tickingClock() });
    expect(outcome.outcome).toBe("completed");
    const bytes = (await reference.blobs.get(keys.model(world.buildId)))!;
    const model = Forest.load(bytes);
    const expected = model.predictProba(probe);
    const rng = new Rng(101);
    let refused = 0;
    for (let i = 0; i < CASES; i++) {
      const bad = damaged(bytes, rng);
      let loaded: Forest;
      try {
        loaded = Forest.load(bad.bytes);
      } catch (err) {
        expect(err, `bytes ${bad.at.join(",")}`).toBeInstanceOf(FormatError);
        expect((err as Error).message).not.toContain("\n");
        refused++;
        continue;
      }
      expect(loaded.predictProba(probe), `bytes ${bad.at.join(",")} changed but the model loaded`).toEqual(expected);
    }
    // Only a no-op change (a byte replaced by itself) may load; everything else is caught by the checksum.
    expect(refused).toBeGreaterThan(CASES * 0.95);
  });

  it(`a grove in the store: ${CASES} damaged copies either give the same model or fail the build naming the grove (by its digest, or as unreadable)`, async () => {
    const reference = await copyOfBuild();
    await aggregate(world.buildId, { ...reference, notifier: new MemoryNotifier(), clock: tickingClock() });
    const expectedModel = (await reference.blobs.get(keys.model(world.buildId)))!;
    const rng = new Rng(202);
    let failed = 0;
    for (let i = 0; i < CASES; i++) {
      const grove = i % 3;
      const bad = damaged((await world.blobs.get(world.groveKeys[grove]!))!, rng);
      // Odd cases: the damage happened before landing (the recorded digest is the damaged bytes'), so only the
      // format's own checks can catch it. Even cases: damaged after landing, which the digest catches.
      const before = i % 2 === 1;
      const { blobs, ledger } = await copyOfBuild(before ? { grove, digest: sha256Hex(bad.bytes) } : undefined);
      await blobs.put(world.groveKeys[grove]!, bad.bytes);
      const notifier = new MemoryNotifier();
      const outcome = await aggregate(world.buildId, { blobs, ledger, notifier, clock: tickingClock() });
      if (outcome.outcome === "completed") {
        expect(await blobs.get(keys.model(world.buildId)), `grove ${grove} bytes ${bad.at.join(",")}`).toEqual(expectedModel);
        continue;
      }
      failed++;
      expect(outcome.outcome).toBe("failed");
      const reason = (outcome as { reason: string }).reason;
      expect(reason).toContain(`grove ${grove} (${world.groveKeys[grove]}) is ${before ? "unreadable: " : "not the grove that landed: "}`);
      expect(reason).not.toContain("\n");
      expect((await ledger.get(world.buildId))!.status).toBe("FAILED");
      expect(await blobs.exists(keys.model(world.buildId))).toBe(false);
      expect(notifier.published.map((n) => n.type)).toEqual(["build.failed"]);
    }
    expect(failed).toBeGreaterThan(CASES * 0.95);
  });

  it(`a pack in the store: ${CASES} damaged copies are refused naming the key (or are the very same pack)`, async () => {
    const original = (await world.blobs.get(world.packKey))!;
    const rng = new Rng(303);
    let refused = 0;
    for (let i = 0; i < CASES; i++) {
      const blobs = new MemoryBlobStore();
      const bad = damaged(original, rng);
      await blobs.put(world.packKey, bad.bytes);
      try {
        const { pack } = await new PackCache(1).load(world.packHash, world.packKey, blobs);
        expect(pack.bytes, `bytes ${bad.at.join(",")} changed but the pack loaded`).toEqual(original);
      } catch (err) {
        expect(err, `bytes ${bad.at.join(",")}`).toBeInstanceOf(TaskError);
        expect((err as Error).message).toMatch(new RegExp(`^dataset pack ${world.packKey} is damaged: `));
        expect((err as Error).message).not.toContain("\n");
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(CASES * 0.95);
  });
});
