import { describe, expect, it } from "vitest";
import { InternalError, policyOf, SpecError } from "../src/errors.ts";
import { extendBuild, planExtension } from "../src/extend.ts";
import { keys } from "../src/keys.ts";
import { buildIdFor } from "../src/plan.ts";
import { groveProgress } from "../src/progress.ts";
import type { BuildReport } from "../src/report.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, readManifest, resumeBuild, submitBuild } from "../src/submit.ts";
import { failGroveTask, trainGrove } from "../src/train-grove.ts";
import { fixture, memoryPipeline } from "./support.ts";

const iris = fixture("iris");
const SPEC = { dataset: "test/fixtures/iris.csv", n_estimators: 40, grove_size: 10, seed: 5, tags: { suite: "extend" } };

type Pipeline = ReturnType<typeof memoryPipeline>;

/** Trains every queued task, then waits for the aggregations. */
async function drain(p: Pipeline): Promise<void> {
  for (const task of p.queue.drain()) await trainGrove(task, p);
  await Promise.all(p.aggregations.splice(0));
}

/** A build of `spec` over iris in `p`, trained to the end; returns its id. */
async function trained(p: Pipeline, spec: Record<string, unknown>): Promise<string> {
  const parsed = parseBuildSpec(spec);
  const { buildId } = await submitBuild(parsed, p, await prepareDataset(iris, {}, p.blobs, p.clock));
  await drain(p);
  expect((await p.ledger.get(buildId))?.status).toBe("COMPLETED");
  return buildId;
}

/** The model (and groves) of a fresh build of `spec` in a store of its own. */
async function fresh(spec: Record<string, unknown>) {
  const p = memoryPipeline();
  const buildId = await trained(p, spec);
  const manifest = await readManifest(p.blobs, buildId);
  const groves = await Promise.all(manifest.groves.map(async (g) => Buffer.from((await p.blobs.get(keys.grove(buildId, g.grove)))!)));
  return { buildId, model: Buffer.from((await p.blobs.get(keys.model(buildId)))!), groves };
}

const model = async (p: Pipeline, buildId: string) => Buffer.from((await p.blobs.get(keys.model(buildId)))!);
const report = async (p: Pipeline, buildId: string) => JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.report(buildId)))!)) as BuildReport;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe("extending a build with more trees", () => {
  it("40 -> 100 trees in groves of 10: trains only trees 40..99 and gives the fresh 100-tree build's bytes, id and groves", async () => {
    const p = memoryPipeline();
    const parent = await trained(p, SPEC);
    const ext = await extendBuild(parent, 100, p);
    const reference = await fresh({ ...SPEC, n_estimators: 100 });

    expect(ext).toMatchObject({ buildId: reference.buildId, parentId: parent, created: true, queued: range(4, 10), copied: range(0, 4) });
    expect(ext.manifest.extends).toEqual({ buildId: parent, trees: 40, groves: range(0, 4) });
    expect(ext.manifest.spec).toEqual(parseBuildSpec({ ...SPEC, n_estimators: 100 }));
    const tasks = p.queue.drain();
    expect(tasks.map((t) => [t.grove, t.treeStart, t.treeEnd, t.params.n_estimators])).toEqual(range(4, 10).map((g) => [g, g * 10, g * 10 + 10, 100]));
    // The copies landed through the ledger, marked as copies.
    const record = (await p.ledger.get(ext.buildId))!;
    expect(record).toMatchObject({ status: "TRAINING", total: 10, remaining: 6, landed: range(0, 4), tags: SPEC.tags });
    expect(range(0, 4).map((g) => record.groveStats[g].copied)).toEqual([true, true, true, true]);
    expect(groveProgress(record, 100, 0)).toMatchObject({ landed: 4, treesDone: 40, treesCopied: 40 });
    // A copy is the grove the fresh build trained, byte for byte (the parent's trees, stamped n_estimators 100).
    for (const g of range(0, 4)) expect(Buffer.from((await p.blobs.get(keys.grove(ext.buildId, g)))!).equals(reference.groves[g])).toBe(true);
    expect(Buffer.from((await p.blobs.get(keys.grove(parent, 0)))!).equals(reference.groves[0])).toBe(false);

    for (const task of tasks) await trainGrove(task, p);
    await Promise.all(p.aggregations.splice(0));
    expect((await model(p, ext.buildId)).equals(reference.model)).toBe(true);

    const r = await report(p, ext.buildId);
    expect(r.extends).toEqual({ buildId: parent, trees: 40 });
    expect(r.groves.map((g) => [g.grove, g.copied === true, g.straggler])).toEqual(range(0, 10).map((g) => [g, g < 4, false]));
    // Training figures count the 60 trees trained here; the copies cost requests, not Lambda time.
    expect(r.cost.groves.map((g) => g.grove)).toEqual(range(4, 10));
    expect((r.timings.treesPerSecond * r.timings.trainWallMs) / 1000).toBeCloseTo(60, 6);
    expect(r.cost.requests.s3Puts).toBe(2 + 6 + 4 + 2);
    expect(r.cost.requests.lambda).toBe(6 + 1);
    expect((await report(p, parent)).extends).toBeUndefined();
  });

  it("45 trees in groves of 10 -> 100: the parent's short grove is kept, new groves start at 45, same bytes as fresh", async () => {
    const spec = { ...SPEC, n_estimators: 45 };
    const p = memoryPipeline();
    const parent = await trained(p, spec);
    const ext = await extendBuild(parent, 100, p);
    expect(ext.manifest.groves.map((g) => [g.treeStart, g.treeEnd])).toEqual([
      [0, 10], [10, 20], [20, 30], [30, 40], [40, 45],
      [45, 55], [55, 65], [65, 75], [75, 85], [85, 95], [95, 100],
    ]);
    expect(ext).toMatchObject({ copied: range(0, 5), queued: range(5, 11) });
    await drain(p);
    const reference = await fresh({ ...spec, n_estimators: 100 });
    expect(ext.buildId).toBe(reference.buildId);
    expect((await model(p, ext.buildId)).equals(reference.model)).toBe(true);
    expect((await report(p, ext.buildId)).groves).toHaveLength(11);
  });

  it("an extension of an extension (40 -> 70 -> 100) is the fresh 100-tree build too, its copies taken from the 70-tree build", async () => {
    const p = memoryPipeline();
    const first = await trained(p, SPEC);
    const seventy = await extendBuild(first, 70, p);
    await drain(p);
    const hundred = await extendBuild(seventy.buildId, 100, p);
    expect(hundred).toMatchObject({ copied: range(0, 7), queued: range(7, 10) });
    expect(hundred.manifest.extends).toEqual({ buildId: seventy.buildId, trees: 70, groves: range(0, 7) });
    await drain(p);
    expect((await model(p, hundred.buildId)).equals((await fresh({ ...SPEC, n_estimators: 100 })).model)).toBe(true);
    expect((await model(p, seventy.buildId)).equals((await fresh({ ...SPEC, n_estimators: 70 })).model)).toBe(true);
  });

  it("a parent that lost a grove within its tolerance: the extension trains that grove, so it has every tree", async () => {
    const spec = { ...SPEC, tolerated_failures: 1 };
    const p = memoryPipeline();
    const { buildId: parent } = await submitBuild(parseBuildSpec(spec), p, await prepareDataset(iris, {}, p.blobs, p.clock));
    for (const task of p.queue.drain()) {
      if (task.grove === 2) await failGroveTask(task, new Error("out of memory"), p);
      else await trainGrove(task, p);
    }
    await Promise.all(p.aggregations.splice(0));
    expect((await report(p, parent)).model.trees).toBe(30);

    const ext = await extendBuild(parent, 100, p);
    expect(ext).toMatchObject({ copied: [0, 1, 3], queued: [2, ...range(4, 10)] });
    await drain(p);
    expect((await model(p, ext.buildId)).equals((await fresh({ ...spec, n_estimators: 100 })).model)).toBe(true);
  });

  it("the N-tree build exists already (trained fresh, or extended before): it is the answer, nothing is written or queued", async () => {
    const p = memoryPipeline();
    const parent = await trained(p, SPEC);
    const bigger = await trained(p, { ...SPEC, n_estimators: 60 });
    const puts = p.blobs.keys().length;
    const ext = await extendBuild(parent, 60, p);
    expect(ext).toMatchObject({ buildId: bigger, created: false, queued: [], copied: [] });
    expect(ext.record.status).toBe("COMPLETED");
    expect(p.queue.messages).toEqual([]);
    expect(p.blobs.keys().length).toBe(puts);

    const once = await extendBuild(parent, 80, p);
    await drain(p);
    const twice = await extendBuild(parent, 80, p);
    expect(twice).toMatchObject({ buildId: once.buildId, created: false, queued: [], copied: [] });
    expect(p.queue.messages).toEqual([]);
  });

  it("refuses, in one line naming the build and before writing anything: unknown, FAILED or unfinished parents, no more trees, other options", async () => {
    const p = memoryPipeline();
    const parent = await trained(p, SPEC);
    const { buildId: unfinished } = await submitBuild(parseBuildSpec({ ...SPEC, seed: 6 }), p, await prepareDataset(iris, {}, p.blobs, p.clock));
    const [lost] = p.queue.drain();
    const { buildId: failed } = await submitBuild(parseBuildSpec({ ...SPEC, seed: 7 }), p, await prepareDataset(iris, {}, p.blobs, p.clock));
    await failGroveTask(p.queue.drain()[0], new Error("out of memory"), p);
    const before = p.blobs.keys();

    const refusal = async (run: Promise<unknown>) => {
      const err = (await run.then(
        () => undefined,
        (e: unknown) => e,
      )) as Error;
      expect(err, "refused").toBeInstanceOf(Error);
      expect(policyOf(err)).toBe("input");
      // One line, or a SpecError's one line per field (the CLI joins them, naming each field's flag).
      expect(err.message.split("\n")).toHaveLength(err instanceof SpecError ? err.issues.length : 1);
      return err;
    };
    expect((await refusal(extendBuild("b-0000000000000000", 100, p))).message).toBe("cannot extend build b-0000000000000000: there is no such build");
    expect((await refusal(extendBuild(unfinished, 100, p))).message).toBe(`cannot extend build ${unfinished}: it is TRAINING, not finished; finish it first (resume it)`);
    expect((await refusal(extendBuild(failed, 100, p))).message).toMatch(new RegExp(`^cannot extend build ${failed}: it FAILED \\(1 of 4 groves failed .*out of memory\\)$`));
    for (const trees of [40, 30])
      expect((await refusal(extendBuild(parent, trees, p))).message).toBe(
        `cannot extend build ${parent} to ${trees} trees: it has 40; extending adds trees, so ask for more than 40`,
      );
    expect(await refusal(extendBuild(parent, 100.5, p))).toBeInstanceOf(SpecError);
    const changed = (await refusal(extendBuild(parent, 100, p, { expect: { seed: 6, label: "species", max_depth: 4 } }))) as SpecError;
    expect(changed).toBeInstanceOf(SpecError);
    // Naming the label the parent defaulted to changes the spec too (and so the build id).
    expect(changed.issues.map((i) => i.path)).toEqual(["seed", "label", "max_depth"]);
    expect(changed.issues[0].message).toBe(`would change build ${parent}'s seed (5) to 6; an extension keeps every option but the number of trees`);
    expect(changed.issues[1].message).toMatch(new RegExp(`^would change build ${parent}'s label \\(nothing\\) to "species";`));
    expect(changed.issues[2].message).toMatch(new RegExp(`^would change build ${parent}'s max_depth \\(nothing\\) to 4;`));
    expect((await refusal(extendBuild(parent, 100, p, { maxGroves: 9 }))).message).toBe(
      `cannot extend build ${parent} to 100 trees: with its 4 groves and new ones of 10 trees that is 10 groves; a build here has at most 9`,
    );
    expect(p.blobs.keys()).toEqual(before);
    expect(p.queue.messages).toEqual([]);

    // Options repeated unchanged are fine (an explicit task auto is the default; the dataset reference is not compared).
    const ext = await extendBuild(parent, 50, p, { expect: { seed: 5, task: "auto", grove_size: 10, tags: { suite: "extend" }, dataset: "elsewhere.csv" } });
    expect(ext.created).toBe(true);
    expect(lost.buildId).toBe(unfinished);
  });

  it("a parent whose grove is gone from the store cannot be extended (an internal fault), and nothing is written", async () => {
    const p = memoryPipeline();
    const parent = await trained(p, SPEC);
    p.blobs.blobs.delete(keys.grove(parent, 2));
    const before = p.blobs.keys();
    const err = await planExtension(parent, 100, p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as Error).message).toBe(`cannot extend build ${parent}: its grove 2 (${keys.grove(parent, 2)}) is missing from the store`);
    expect(p.blobs.keys()).toEqual(before);
  });

  /** An extension of a 40-tree build to 100 trees whose submitter dies on the first write of the copy of `grove`. */
  async function interruptedExtension(grove: number) {
    const p = memoryPipeline();
    const parent = await trained(p, { ...SPEC, grove_size: 5 });
    const childId = buildIdFor((await readManifest(p.blobs, parent)).packHash, parseBuildSpec({ ...SPEC, grove_size: 5, n_estimators: 100 }));
    const put = p.blobs.put.bind(p.blobs);
    let failing = true;
    p.blobs.put = async (key, bytes, type) => {
      if (failing && key === keys.grove(childId, grove)) {
        failing = false;
        throw new Error("connection reset");
      }
      return put(key, bytes, type);
    };
    await expect(extendBuild(parent, 100, p)).rejects.toThrow("connection reset");
    return { p, childId };
  }

  it("a crash part-way through the copies resumes like any build: the rest copied, only unlanded groves trained, same bytes", async () => {
    const { p, childId } = await interruptedExtension(5);
    const tasks = p.queue.drain();
    expect(tasks.map((t) => t.grove)).toEqual(range(8, 20));
    await trainGrove(tasks[0], p); // one trained grove landed; the other tasks were lost with the submitter
    const before = (await p.ledger.get(childId))!;
    expect(before.status).toBe("TRAINING");
    expect(before.landed).toContain(8);
    const copiedBefore = before.landed.filter((g) => g < 8);
    expect(copiedBefore.length).toBeLessThan(8);

    const resumed = await resumeBuild(childId, p);
    expect(resumed.copied).toEqual(range(0, 8).filter((g) => !copiedBefore.includes(g)));
    expect(resumed.requeued).toEqual(range(9, 20));
    await drain(p);
    expect((await model(p, childId)).equals((await fresh({ ...SPEC, grove_size: 5, n_estimators: 100 })).model)).toBe(true);
  });

  it("resumed by the sweeper (copy: false), the groves left to copy are trained instead, into the same bytes", async () => {
    const { p, childId } = await interruptedExtension(3);
    p.queue.drain(); // lost with the submitter
    const copiedBefore = (await p.ledger.get(childId))!.landed;
    const resumed = await resumeBuild(childId, p, { copy: false });
    expect(resumed.copied).toBeUndefined();
    expect(resumed.requeued).toEqual(range(0, 20).filter((g) => !copiedBefore.includes(g)));
    expect(resumed.requeued).toContain(3);
    await drain(p);
    expect((await model(p, childId)).equals((await fresh({ ...SPEC, grove_size: 5, n_estimators: 100 })).model)).toBe(true);
  });
});
