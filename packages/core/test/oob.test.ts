import { describe, expect, it } from "vitest";
import { Forest, OobSums, allRows, buildPack, decodePack, fitForest, parseCsv, resolveParams } from "@canopy/forest";
import { extendBuild } from "../src/extend.ts";
import { keys } from "../src/keys.ts";
import { decodeOobDecision, encodeOobDecision, NO_OOB_WARNING, OobCurve } from "../src/oob.ts";
import { splitRows } from "../src/plan.ts";
import type { BuildReport } from "../src/report.ts";
import { SpecError } from "../src/errors.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, submitBuild } from "../src/submit.ts";
import { failGroveTask, trainGrove } from "../src/train-grove.ts";
import { fixture, memoryPipeline } from "./support.ts";

type Pipeline = ReturnType<typeof memoryPipeline>;

async function drain(p: Pipeline): Promise<void> {
  for (const task of p.queue.drain()) await trainGrove(task, p);
  await Promise.all(p.aggregations.splice(0));
}

async function build(data: Uint8Array, spec: Record<string, unknown>, p = memoryPipeline()) {
  const { buildId } = await submitBuild(parseBuildSpec(spec), p, await prepareDataset(data, {}, p.blobs, p.clock));
  await drain(p);
  const record = await p.ledger.get(buildId);
  const get = async (key: string) => Buffer.from((await p.blobs.get(key)) ?? new Uint8Array());
  return {
    p,
    buildId,
    record: record!,
    report: JSON.parse((await get(keys.report(buildId))).toString()) as BuildReport,
    model: await get(keys.model(buildId)),
    oob: await get(keys.oob(buildId)),
  };
}

/** What must not depend on the grove split: everything OOB in the report, the model and oob.bin. */
const deterministic = (b: Awaited<ReturnType<typeof build>>) => ({
  oob_score: b.report.oob_score,
  oob: { ...b.report.oob, key: undefined },
  curve: b.report.oobMetricsByTrees,
  model: b.model.toString("base64"),
  decision: b.oob.toString("base64"),
});

describe("out-of-bag scores through the pipeline", () => {
  it.each([
    ["iris", "classification"],
    ["diabetes", "regression"],
  ] as const)("%s: 1, 3 and 10 groves give the same bytes (model, oob.bin, oob_score, curve)", async (name, task) => {
    const spec = { dataset: `${name}.csv`, n_estimators: 30, seed: 4, oob_score: true };
    const [one, three, ten] = await Promise.all([30, 10, 3].map((grove_size) => build(fixture(name), { ...spec, grove_size })));
    expect(one.record.status).toBe("COMPLETED");
    expect([one.report.groves.length, three.report.groves.length, ten.report.groves.length]).toEqual([1, 3, 10]);
    expect(deterministic(three)).toEqual(deterministic(one));
    expect(deterministic(ten)).toEqual(deterministic(one));

    // The score is the engine's over the build's training rows, computed in one piece.
    const pack = decodePack((await one.p.blobs.get(one.report.dataset.packKey))!);
    const { train } = splitRows(pack.nRows, 0.25, 4);
    const sums = OobSums.of(pack, train);
    fitForest(pack, { n_estimators: 30, random_state: 4 }, { rows: train, oob: sums });
    expect(one.report.oob_score).toBe(sums.score(pack, train));
    expect(one.report.oob).toMatchObject({ metric: task === "classification" ? "accuracy" : "r2", rows: train.length, rowsWithoutOob: sums.rowsWithoutOob, key: keys.oob(one.buildId), bytes: one.oob.length });
    expect(one.report.oob_score).toBeGreaterThan(task === "classification" ? 0.85 : 0.3);

    // oob.bin: the training rows, their counts and the decision function.
    const decision = decodeOobDecision(one.oob);
    expect(Array.from(decision.rows)).toEqual(Array.from(train));
    expect(Array.from(decision.counts)).toEqual(Array.from(sums.counts));
    expect(decision.values).toEqual(sums.decisionFunction());
    expect(decision.width).toBe(task === "classification" ? 3 : 1);

    // The curve ends at 30 trees; with every training row sampled (fewer than 2000), its last point is oob_score
    // when every row was out of bag at least once.
    const curve = one.report.oobMetricsByTrees!;
    expect(curve.rows).toBe("oob");
    expect(curve.n).toBe(train.length);
    expect(curve.points.at(-1)!.trees).toBe(30);
    if (sums.rowsWithoutOob === 0) {
      const key = task === "classification" ? "accuracy" : "r2";
      expect(curve.points.at(-1)![key]).toBeCloseTo(one.report.oob_score!, 9);
    }
  });

  it("the model is the same bytes with or without oob_score; the build is another", async () => {
    const spec = { dataset: "iris.csv", n_estimators: 10, grove_size: 5, seed: 1 };
    const [plain, withOob] = await Promise.all([build(fixture("iris"), spec), build(fixture("iris"), { ...spec, oob_score: true })]);
    expect(withOob.model).toEqual(plain.model);
    expect(withOob.buildId).not.toBe(plain.buildId);
    expect(plain.report.oob_score).toBeUndefined();
    expect(plain.oob.length).toBe(0);
    // false names the same build as leaving it out.
    expect(parseBuildSpec({ ...spec, oob_score: false })).toEqual(parseBuildSpec(spec));
  });

  it("an extension with oob_score equals the fresh build (oob.bin and oob_score included)", async () => {
    const spec = { dataset: "iris.csv", n_estimators: 20, grove_size: 10, seed: 6, oob_score: true };
    const parent = await build(fixture("iris"), spec);
    const ext = await extendBuild(parent.buildId, 45, parent.p);
    await drain(parent.p);
    const fresh = await build(fixture("iris"), { ...spec, n_estimators: 45 });
    expect(ext.buildId).toBe(fresh.buildId);
    const extended = await parent.p.blobs.get(keys.oob(ext.buildId));
    expect(Buffer.from(extended!)).toEqual(fresh.oob);
    const report = JSON.parse(new TextDecoder().decode((await parent.p.blobs.get(keys.report(ext.buildId)))!)) as BuildReport;
    expect(report.groves.filter((g) => g.copied).map((g) => g.grove)).toEqual([0, 1]);
    expect(report.oob_score).toBe(fresh.report.oob_score);
    expect(report.oobMetricsByTrees).toEqual(fresh.report.oobMetricsByTrees);
  });

  it("a grove's out-of-bag sums changed after landing fail the build by name", async () => {
    const p = memoryPipeline();
    const { buildId } = await submitBuild(
      parseBuildSpec({ dataset: "iris.csv", n_estimators: 4, grove_size: 2, seed: 1, oob_score: true }),
      p,
      await prepareDataset(fixture("iris"), {}, p.blobs, p.clock),
    );
    const tasks = p.queue.drain();
    await trainGrove(tasks[0], p);
    const key = keys.groveOob(buildId, 0);
    const bytes = (await p.blobs.get(key))!;
    bytes[bytes.length - 1] ^= 1;
    await p.blobs.put(key, bytes, "application/octet-stream");
    await trainGrove(tasks[1], p);
    const [outcome] = await Promise.all(p.aggregations.splice(0));
    expect(outcome).toMatchObject({ outcome: "failed" });
    expect(outcome.outcome === "failed" && outcome.reason).toMatch(/grove 0's out-of-bag sums \(builds\/.*\/groves\/00000\.oob\) are not the ones that landed/);
  });

  it("few trees: rows never out of bag are counted, warned about and scored as 0, as sklearn does", async () => {
    const b = await build(fixture("iris"), { dataset: "iris.csv", n_estimators: 2, grove_size: 1, seed: 3, oob_score: true });
    expect(b.report.oob!.rowsWithoutOob).toBeGreaterThan(0);
    expect(b.report.oob!.warning).toBe(NO_OOB_WARNING);
    const decision = decodeOobDecision(b.oob);
    const never = decision.counts.reduce((n, c) => n + (c === 0 ? 1 : 0), 0);
    expect(never).toBe(b.report.oob!.rowsWithoutOob);
    decision.counts.forEach((c, i) => {
      if (c === 0) expect(Array.from(decision.values.slice(i * 3, i * 3 + 3))).toEqual([0, 0, 0]);
    });
  });

  it("a grove given up on within tolerance: the score is the landed trees' (the curve too)", async () => {
    const p = memoryPipeline();
    const spec = parseBuildSpec({ dataset: "iris.csv", n_estimators: 15, grove_size: 5, seed: 7, oob_score: true, tolerated_failures: 1 });
    const { buildId } = await submitBuild(spec, p, await prepareDataset(fixture("iris"), {}, p.blobs, p.clock));
    const [t0, t1, t2] = p.queue.drain();
    await trainGrove(t0, p);
    await failGroveTask(t1, new Error("lost"), p);
    await trainGrove(t2, p);
    await Promise.all(p.aggregations.splice(0));
    const report = JSON.parse(new TextDecoder().decode((await p.blobs.get(keys.report(buildId)))!)) as BuildReport;
    expect(report.model.trees).toBe(10);
    const pack = decodePack((await p.blobs.get(report.dataset.packKey))!);
    const { train } = splitRows(pack.nRows, 0.25, 7);
    const sums = OobSums.of(pack, train);
    fitForest(pack, { n_estimators: 15, random_state: 7 }, { rows: train, treeIndices: [0, 1, 2, 3, 4, 10, 11, 12, 13, 14], oob: sums });
    expect(report.oob_score).toBe(sums.score(pack, train));
    expect(Buffer.from((await p.blobs.get(keys.oob(buildId)))!)).toEqual(Buffer.from(encodeOobDecision(train, sums)));
    expect(report.oobMetricsByTrees!.points.at(-1)!.trees).toBe(10);
  });

  it("oob_score needs bootstrap, as sklearn's ValueError says", () => {
    expect(() => parseBuildSpec({ dataset: "x.csv", oob_score: true, bootstrap: false })).toThrow(SpecError);
    expect(() => parseBuildSpec({ dataset: "x.csv", oob_score: true, bootstrap: false })).toThrow(/oob_score: needs the bootstrap; scikit-learn: Out of bag estimation only available if bootstrap=True/);
    expect(() => parseBuildSpec({ dataset: "x.csv", oob_score: "yes" })).toThrow(/oob_score: must be true or false/);
  });

  it("the curve samples every step-th training row, at most the limit", () => {
    const pack = buildPack(parseCsv(fixture("iris")));
    const rows = allRows(pack.nRows);
    const params = resolveParams({ n_estimators: 3, random_state: 2 }, "classification");
    const forest: Forest = fitForest(pack, params);
    const curve = new OobCurve(pack, rows, 3, 40);
    for (const t of forest.trees) curve.add(t, params);
    const result = curve.finish();
    expect(result.n).toBe(38); // 150 rows, every 4th
    expect(result.points.map((p) => p.trees)).toEqual([1, 2, 3]);
    expect(result.points.every((p) => p.oob_rows > 0 && p.oob_rows <= 38)).toBe(true);
  });
});

