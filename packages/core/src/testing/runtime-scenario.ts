import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aggregate } from "../aggregate.ts";
import { policyOf } from "../errors.ts";
import { isAggregationTrigger } from "../ledger.ts";
import { keys } from "../keys.ts";
import type { BlobStore } from "../ports.ts";
import type { BuildEnd, BuildEvent, Runtime } from "../runtime.ts";
import { parseBuildSpec } from "../spec.ts";
import { prepareBuildData, submitBuild } from "../submit.ts";
import { trainGrove } from "../train-grove.ts";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "./memory.ts";

export interface RuntimeScenarioOptions {
  /** A runtime on a fresh store, its trainers running, and the blob store under it (to read models). */
  open(): Promise<{ runtime: Runtime; blobs: BlobStore }>;
  /**
   * Loses the outstanding work of a build that is training, the way this runtime can lose it (the embedded
   * process stops; on AWS the queued tasks are lost), and returns the runtime to go on with.
   */
  interrupt(runtime: Runtime, buildId: string): Promise<{ runtime: Runtime; blobs: BlobStore }>;
  /** CSV bytes, and two specs over them: one trained straight through, one interrupted and resumed. Many groves in the second. */
  data: Uint8Array;
  spec: Record<string, unknown>;
  interruptedSpec: Record<string, unknown>;
  /** A spec trained and then extended to `trees` trees (more than its n_estimators). */
  extension: { spec: Record<string, unknown>; trees: number };
}

/** The model core makes of `spec` on memory ports, trained in one go: what every runtime must reproduce byte for byte. */
async function referenceModel(data: Uint8Array, input: Record<string, unknown>): Promise<Buffer> {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const aggregations: Promise<unknown>[] = [];
  ports.ledger.watch((change) => {
    if (isAggregationTrigger(change)) aggregations.push(aggregate(change.new.buildId, ports));
  });
  const spec = parseBuildSpec(input);
  const { buildId } = await submitBuild(spec, ports, await prepareBuildData(spec, data, ports.blobs));
  for (const task of ports.queue.drain()) await trainGrove(task, ports);
  await Promise.all(aggregations);
  return Buffer.from((await ports.blobs.get(keys.model(buildId)))!);
}

async function collect(events: AsyncIterable<BuildEvent>): Promise<BuildEvent[]> {
  const out: BuildEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

const stages = (events: BuildEvent[]) => events.filter((e) => e.type === "stage").map((e) => (e.type === "stage" ? e.stage : ""));
const progress = (events: BuildEvent[]) => events.flatMap((e) => (e.type === "progress" ? [e] : []));
const endOf = (events: BuildEvent[]) => events.at(-1) as BuildEnd;

/**
 * The runtime interface's scenario, the same for every runtime: submit, follow, complete, submit again, resume a
 * finished build, then a build interrupted part-way and resumed into the same bytes. Call it in a test file with
 * the runtime's own open and interrupt (see runtime-local's and test/aws's).
 */
export function describeRuntimeScenario(name: string, options: RuntimeScenarioOptions): void {
  describe(`${name}: the runtime scenario`, () => {
    let opened: { runtime: Runtime; blobs: BlobStore };
    beforeAll(async () => {
      opened = await options.open();
    });
    afterAll(async () => {
      await opened?.runtime.close();
    });
    const model = async (buildId: string) => Buffer.from((await opened.blobs.get(keys.model(buildId)))!);
    let buildId: string;

    it("submit returns a handle at once; follow reports training, each grove, aggregating and the end; status agrees", async () => {
      const { runtime } = opened;
      const spec = parseBuildSpec(options.spec);
      const handle = await runtime.submit({ spec, data: options.data });
      buildId = handle.buildId;
      const groves = Math.ceil(spec.n_estimators / spec.grove_size);
      expect(handle).toMatchObject({ created: true, groves, trees: spec.n_estimators, queued: Array.from({ length: groves }, (_, g) => g) });
      expect(handle.record).toMatchObject({ buildId, status: "TRAINING", total: groves });
      expect(handle.dataset).toMatchObject({ packKey: expect.stringMatching(/^packs\/[0-9a-f]{64}\.pack$/), reused: false });

      const events = await collect(runtime.follow(buildId));
      const seen = stages(events);
      expect(seen[0]).toBe("training");
      expect(seen.slice(-2)).toEqual(["aggregating", "done"]);
      const counts = progress(events).map((p) => p.landed);
      expect(counts.every((n, i) => i === 0 || n > counts[i - 1])).toBe(true);
      expect(progress(events).at(-1)).toMatchObject({ buildId, landed: groves, failed: 0, total: groves, treesDone: spec.n_estimators, treesTotal: spec.n_estimators });
      const end = endOf(events);
      expect(end).toMatchObject({ type: "end", buildId });
      expect(end.view.record.status).toBe("COMPLETED");
      expect(end.view.report?.model.trees).toBe(spec.n_estimators);
      expect(end.view).toMatchObject({ treesDone: spec.n_estimators, treesTotal: spec.n_estimators });

      expect(await runtime.status(buildId)).toEqual(end.view);
      expect((await model(buildId)).equals(await referenceModel(options.data, options.spec))).toBe(true);
    });

    it("the same data and spec again: the finished build, nothing queued or uploaded, and following it ends at once", async () => {
      const again = await opened.runtime.submit({ spec: parseBuildSpec(options.spec), data: options.data });
      expect(again).toMatchObject({ buildId, created: false, queued: [], dataset: { reused: true } });
      expect(again.record.status).toBe("COMPLETED");
      const events = await collect(opened.runtime.follow(buildId));
      expect(stages(events)).toEqual(["done"]);
      expect(progress(events)).toEqual([]);
      expect(endOf(events).view.record.status).toBe("COMPLETED");
    });

    it("resuming a finished build re-queues nothing", async () => {
      const resumed = await opened.runtime.submit({ resume: buildId });
      expect(resumed).toMatchObject({ buildId, created: false, queued: [] });
      expect(resumed.record.status).toBe("COMPLETED");
      expect(resumed.dataset).toBeUndefined();
    });

    it("an unknown build: no status, and resuming it is an input error", async () => {
      const unknown = "b-0000000000000000";
      expect(await opened.runtime.status(unknown)).toBeUndefined();
      const err = await opened.runtime.submit({ resume: unknown }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(policyOf(err)).toBe("input");
      expect((err as Error).message).toMatch(/b-0000000000000000 not found/);
    });

    it("follow() without a build id sees every build, from when it was called", async () => {
      const all = opened.runtime.follow();
      const handle = await opened.runtime.submit({ spec: parseBuildSpec({ ...options.spec, seed: 4242 }), data: options.data });
      const own: BuildEvent[] = [];
      for await (const event of all) {
        if (event.buildId !== handle.buildId) continue; // other builds' (an earlier one's last writes, on a stream)
        own.push(event);
        if (event.type === "end") break;
      }
      expect(stages(own)[0]).toBe("training");
      expect(stages(own).at(-1)).toBe("done");
      expect(progress(own).at(-1)).toMatchObject({ landed: handle.groves, treesDone: handle.trees });
      expect(endOf(own).view.record.status).toBe("COMPLETED");
    });

    it("extending a finished build trains only the new trees, copies the parent's groves, and gives the fresh build's bytes", async () => {
      const { spec: parentSpec, trees } = options.extension;
      const spec = parseBuildSpec(parentSpec);
      const parent = await opened.runtime.submit({ spec, data: options.data });
      expect(endOf(await collect(opened.runtime.follow(parent.buildId))).view.record.status).toBe("COMPLETED");

      const handle = await opened.runtime.submit({ extend: parent.buildId, trees });
      const copied = Array.from({ length: parent.groves }, (_, g) => g);
      const groves = parent.groves + Math.ceil((trees - spec.n_estimators) / spec.grove_size);
      const queued = Array.from({ length: groves - parent.groves }, (_, i) => parent.groves + i);
      expect(handle).toMatchObject({ created: true, extends: parent.buildId, copied, queued, groves, trees });
      expect(handle.dataset).toBeUndefined();

      const events = await collect(opened.runtime.follow(handle.buildId));
      expect(progress(events).at(-1)).toMatchObject({ landed: groves, treesDone: trees, treesTotal: trees });
      const { view } = endOf(events);
      expect(view.record.status).toBe("COMPLETED");
      expect(view.report?.extends).toEqual({ buildId: parent.buildId, trees: spec.n_estimators });
      expect(view.report?.groves.map((g) => g.copied === true)).toEqual(Array.from({ length: groves }, (_, g) => g < parent.groves));
      const fresh = { ...parentSpec, n_estimators: trees };
      expect((await model(handle.buildId)).equals(await referenceModel(options.data, fresh))).toBe(true);

      // Again: the same build, nothing queued; and the fresh N-tree build of the same data and spec is this one.
      expect(await opened.runtime.submit({ extend: parent.buildId, trees })).toMatchObject({ buildId: handle.buildId, created: false, queued: [] });
      expect(await opened.runtime.submit({ spec: parseBuildSpec(fresh), data: options.data })).toMatchObject({ buildId: handle.buildId, created: false, queued: [] });

      for (const [request, message] of [
        [{ extend: parent.buildId, trees: spec.n_estimators }, `cannot extend build ${parent.buildId} to ${spec.n_estimators} trees: it has ${spec.n_estimators}`],
        [{ extend: parent.buildId, trees, expect: { seed: spec.seed + 1 } }, `seed: would change build ${parent.buildId}'s seed`],
        [{ extend: "b-0000000000000000", trees }, "cannot extend build b-0000000000000000: it is not in "],
      ] as const) {
        const err = await opened.runtime.submit(request).catch((e: unknown) => e);
        expect(policyOf(err)).toBe("input");
        expect((err as Error).message.startsWith(message), (err as Error).message).toBe(true);
      }
    });

    it("a build interrupted part-way, resumed: only what had not landed is queued, and the model is the same bytes", async () => {
      const spec = parseBuildSpec(options.interruptedSpec);
      const handle = await opened.runtime.submit({ spec, data: options.data });
      for await (const event of opened.runtime.follow(handle.buildId)) if (event.type === "progress" && event.landed >= 1) break;
      opened = await options.interrupt(opened.runtime, handle.buildId);

      const before = (await opened.runtime.status(handle.buildId))!;
      expect(before.record.status).toBe("TRAINING");
      const settled = new Set([...before.record.landed, ...before.record.failed.map((f) => f.grove)]);
      const outstanding = Array.from({ length: handle.groves }, (_, g) => g).filter((g) => !settled.has(g));
      expect(outstanding.length, "the interruption left groves outstanding").toBeGreaterThan(0);

      // An unfinished build cannot be extended.
      const refused = await opened.runtime.submit({ extend: handle.buildId, trees: handle.trees + 10 }).catch((e: unknown) => e);
      expect(policyOf(refused)).toBe("input");
      expect((refused as Error).message).toBe(`cannot extend build ${handle.buildId}: it is TRAINING, not finished; finish it first (resume it)`);

      const resumed = await opened.runtime.submit({ resume: handle.buildId });
      expect(resumed).toMatchObject({ buildId: handle.buildId, created: false, queued: outstanding });
      const events = await collect(opened.runtime.follow(handle.buildId));
      expect(progress(events)[0].landed).toBeGreaterThanOrEqual(before.record.landed.length);
      expect(endOf(events).view.record.status).toBe("COMPLETED");
      expect((await model(handle.buildId)).equals(await referenceModel(options.data, options.interruptedSpec))).toBe(true);
    });
  });
}
