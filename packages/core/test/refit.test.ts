import { describe, expect, it } from "vitest";
import { InputError } from "../src/errors.ts";
import { keys } from "../src/keys.ts";
import { planRefit, readRefitLink, refitBuild } from "../src/refit.ts";
import type { BuildReport } from "../src/report.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { prepareDataset, readManifest, submitBuild } from "../src/submit.ts";
import { trainGrove } from "../src/train-grove.ts";
import { fixture, memoryPipeline } from "./support.ts";

type Pipeline = ReturnType<typeof memoryPipeline>;
const SPEC = { dataset: "iris.csv", n_estimators: 20, grove_size: 5, seed: 2, oob_score: true };

async function drain(p: Pipeline): Promise<void> {
  for (const task of p.queue.drain()) await trainGrove(task, p);
  await Promise.all(p.aggregations.splice(0));
}

async function trained(p: Pipeline, spec: Record<string, unknown>): Promise<string> {
  const { buildId } = await submitBuild(parseBuildSpec(spec), p, await prepareDataset(fixture("iris"), {}, p.blobs, p.clock));
  await drain(p);
  return buildId;
}

const read = async (p: Pipeline, key: string) => Buffer.from((await p.blobs.get(key))!);
const report = async (p: Pipeline, id: string) => JSON.parse((await read(p, keys.report(id))).toString()) as BuildReport;

describe("refit: held-out metrics first, then the shipped model on every row", () => {
  it("trains the spec with test_fraction 0, links both builds, and carries the evaluation's metrics", async () => {
    const p = memoryPipeline();
    const evaluation = await trained(p, SPEC);
    const refit = await refitBuild(evaluation, p);
    expect(refit.created).toBe(true);
    expect(refit.queued).toEqual([0, 1, 2, 3]);
    await drain(p);

    const evaluated = await report(p, evaluation);
    const r = await report(p, refit.buildId);
    expect(r.status).toBe("COMPLETED");
    expect(r.metrics).toBeNull();
    expect(r.dataset).toMatchObject({ trainRows: 150, testRows: 0 });
    expect(r.spec).toEqual(parseBuildSpec({ ...SPEC, test_fraction: 0 }));
    expect(r.refitOf).toEqual({
      of: evaluation,
      testFraction: 0.25,
      trainRows: 112,
      testRows: 38,
      metrics: (await p.ledger.get(evaluation))!.result!.metrics,
      oob_score: evaluated.oob_score,
    });
    expect(r.refitOf!.metrics).toMatchObject({ accuracy: evaluated.metrics!.task === "classification" ? evaluated.metrics!.accuracy : NaN });
    // Both ways: the refit's manifest names the evaluation build, the evaluation build names its refit.
    expect((await readManifest(p.blobs, refit.buildId)).refit?.of).toBe(evaluation);
    expect(await readRefitLink(p.blobs, evaluation)).toBe(refit.buildId);
    // Its out-of-bag score covers every row now.
    expect(r.oob!.rows).toBe(150);

    // The model is the one a fresh test_fraction 0 build of the same spec gives, under the same id.
    const q = memoryPipeline();
    const fresh = await trained(q, { ...SPEC, test_fraction: 0 });
    expect(fresh).toBe(refit.buildId);
    expect(await read(p, keys.model(refit.buildId))).toEqual(await read(q, keys.model(fresh)));
    expect(await read(p, keys.model(refit.buildId))).not.toEqual(await read(p, keys.model(evaluation)));

    // Refitting again trains nothing.
    const again = await refitBuild(evaluation, p);
    expect(again).toMatchObject({ buildId: refit.buildId, created: false, queued: [] });
    expect(p.queue.drain()).toEqual([]);
  });

  it("refuses, one line each: an unknown build, an unfinished one, one that held nothing out", async () => {
    const p = memoryPipeline();
    await expect(planRefit("b-0000000000000000", p)).rejects.toThrow(new InputError("cannot refit build b-0000000000000000: there is no such build"));
    const { buildId } = await submitBuild(parseBuildSpec(SPEC), p, await prepareDataset(fixture("iris"), {}, p.blobs, p.clock));
    await expect(planRefit(buildId, p)).rejects.toThrow(/cannot refit build b-[0-9a-f]{16}: it is TRAINING; the metrics come from a finished build/);
    const all = await trained(p, { ...SPEC, seed: 9, test_fraction: 0 });
    await expect(planRefit(all, p)).rejects.toThrow(/held nothing out \(test_fraction 0\), so it is already trained on every row/);
  });
});
