import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { keys } from "../src/keys.ts";
import { readPartitionView } from "../src/partitioned-run.ts";
import type { PartitionReport } from "../src/partition-report.ts";
import { parseBuildSpec } from "../src/spec.ts";
import { partitionedRunInMemory } from "../src/testing/index.ts";

const penguins = () => readFileSync(new URL("../../../test/fixtures/penguins.csv", import.meta.url), "utf8");
const spec = () => parseBuildSpec({ dataset: "penguins.csv", label: "Species", n_estimators: 4, grove_size: 2, seed: 3 });
const options = { partitionBy: "Island", minPartitionRows: 60 };
const text = (bytes: Uint8Array | undefined) => (bytes ? new TextDecoder().decode(bytes) : undefined);

describe("a partitioned run's page (report.html)", () => {
  it("is rendered from the stored report.json and stored beside it before the run completes", async () => {
    const rendered: PartitionReport[] = [];
    const run = await partitionedRunInMemory(penguins(), spec(), options, {
      renderReport: (r) => {
        rendered.push(r);
        return `<!doctype html><p>${r.runId}: ${r.partitions.length} models</p>`;
      },
    });
    expect(run.outcome).toMatchObject({ outcome: "completed", pageKey: keys.partitionReportHtml(run.runId) });
    expect(keys.partitionReportHtml(run.runId)).toBe(`partitions/${run.runId}/report.html`);
    const stored = JSON.parse(text(await run.blobs.get(keys.partitionReport(run.runId)))!) as PartitionReport;
    expect(rendered).toEqual([stored]);
    expect(text(await run.blobs.get(keys.partitionReportHtml(run.runId)))).toBe(`<!doctype html><p>${run.runId}: 2 models</p>`);
    expect((await readPartitionView(run, run.runId))?.pageKey).toBe(keys.partitionReportHtml(run.runId));
  });

  it("a renderer that throws costs the page only: the run completes, notifies once, and says why there is no page", async () => {
    const run = await partitionedRunInMemory(penguins(), spec(), options, {
      renderReport: () => {
        throw new Error("the chart library is missing");
      },
    });
    expect(run.outcome).toMatchObject({ outcome: "completed", pageError: "the chart library is missing" });
    expect(run.outcome).not.toHaveProperty("pageKey");
    expect((await run.ledger.summary(run.runId))?.status).toBe("COMPLETED");
    expect(run.notifier.partitions.map((n) => n.type)).toEqual(["partitions.completed"]);
    expect(await run.blobs.exists(keys.partitionReport(run.runId))).toBe(true);
    expect(await run.blobs.exists(keys.partitionReportHtml(run.runId))).toBe(false);
    const view = await readPartitionView(run, run.runId);
    expect(view?.reportKey).toBe(keys.partitionReport(run.runId));
    expect(view).not.toHaveProperty("pageKey");
  });

  it("without a renderer there is no page, as before", async () => {
    const run = await partitionedRunInMemory(penguins(), spec(), options);
    expect(run.outcome.outcome).toBe("completed");
    expect(run.outcome).not.toHaveProperty("pageKey");
    expect(run.outcome).not.toHaveProperty("pageError");
    expect(await run.blobs.exists(keys.partitionReportHtml(run.runId))).toBe(false);
  });
});
