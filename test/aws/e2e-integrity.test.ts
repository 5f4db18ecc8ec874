/**
 * Issue 11, item 4: tasks and groves are checked against the build. The manifest (written at submit) is the source
 * of truth: a trainer takes the pack and parameters from it, not from the message; each landing records the grove's
 * digest, and the aggregator merges a grove only if it is the one that landed. Through the real handlers on moto.
 */
import { CONTENT_TYPES, keys, prepareDataset, type BlobStore, type BuildLedger, type BuildReport } from "@canopy/core";
import { Forest } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import { useAwsEmulator } from "./harness.ts";
import { adapters, digits, handlersOn, provision, referenceModel, runBuild, SPEC } from "./e2e-support.ts";

useAwsEmulator();
const spec = { ...SPEC, grove_size: 2 };
let reference: Awaited<ReturnType<typeof referenceModel>>;
beforeAll(async () => {
  reference = await referenceModel(spec);
});

/** Digits with every label moved one class on: the same shape (rows, columns, classes), another dataset. */
function relabelled(csv: Buffer): Uint8Array {
  const [header, ...rows] = csv.toString("utf8").trimEnd().split("\n");
  return new TextEncoder().encode(`${[header, ...rows.map((r) => r.replace(/,(\d)$/, (_, d: string) => `,${(Number(d) + 1) % 10}`))].join("\n")}\n`);
}

describe("the manifest is the source of truth", () => {
  it("a task for grove 0 pointing at another pack of the same shape trains grove 0 on the build's own pack: the same model", { timeout: 120_000 }, async () => {
    const resources = await provision("-astray", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    const other = await prepareDataset(relabelled(digits), { label: "digit" }, ports.blobs);
    let astray = "";
    const run = await runBuild({
      resources,
      spec,
      handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }),
      submit: ports,
      // Grove 0's message is replaced by one naming the other pack (a stale or tampered message).
      tasks: (tasks) => tasks.map((t) => (t.grove === 0 ? { ...t, packKey: (astray = other.packKey), packHash: other.hash } : t)),
    });

    expect(astray).not.toBe("");
    expect(run.notification.notification).toMatchObject({ type: "build.completed", buildId: reference.buildId });
    expect(run.extra).toEqual([]);
    expect(Buffer.from((await ports.blobs.get(keys.model(run.buildId)))!).equals(reference.model)).toBe(true);
    const report = JSON.parse(new TextDecoder().decode((await ports.blobs.get(keys.report(run.buildId)))!)) as BuildReport;
    expect(report.dataset.packKey).not.toBe(astray);
    expect(report.dataset.packKey).toBe(keys.pack(report.dataset.packHash));
  });

  it("a landed grove changed afterwards (one threshold, same size) fails the build naming the grove; no model, one notification", { timeout: 120_000 }, async () => {
    const resources = await provision("-tampered", { visibilityTimeoutSeconds: 30 });
    const ports = adapters(resources);
    let tampered: { key: string; size: number } | undefined;
    // Grove 2 is changed in S3 between its trainer storing it and landing it: the digest that lands is the stored
    // bytes', so what the aggregator later reads is not the grove that landed.
    const ledger: BuildLedger = Object.create(ports.ledger, {
      landGrove: {
        value: async (...args: Parameters<BuildLedger["landGrove"]>) => {
          const [buildId, grove] = args;
          if (grove === 2) tampered = await changeOneThreshold(ports.blobs, keys.grove(buildId, grove));
          return ports.ledger.landGrove(...args);
        },
      },
    });
    const run = await runBuild({ resources, spec, handlers: handlersOn({ trainer: { blobs: ports.blobs, ledger }, aggregator: ports, deadLetter: ports }), submit: ports });

    expect(tampered).toBeDefined();
    expect(run.extra).toEqual([]);
    const { notification } = run.notification;
    expect(notification).toMatchObject({ type: "build.failed", buildId: run.buildId, status: "FAILED" });
    expect(notification.reason).toMatch(
      new RegExp(
        `^aggregation failed: AggregationError: grove 2 \\(builds/${run.buildId}/groves/00002\\.grove\\) is not the grove that landed: ` +
          "its SHA-256 is [0-9a-f]{12}\\.\\.\\., the trainer recorded [0-9a-f]{12}\\.\\.\\.$",
      ),
    );
    expect(await ports.blobs.exists(keys.model(run.buildId))).toBe(false);
    expect(run.record.status).toBe("FAILED");
  });
});

/** Rewrites the grove at `key` with one split threshold moved: a valid grove of the same size, and another model. */
async function changeOneThreshold(blobs: BlobStore, key: string): Promise<{ key: string; size: number }> {
  const bytes = (await blobs.get(key))!;
  const grove = Forest.load(bytes);
  const tree = grove.trees[0];
  const split = Array.from(tree.feature).findIndex((f) => f >= 0);
  tree.threshold[split] += 0.5;
  const changed = grove.toBinary();
  expect(changed.length).toBe(bytes.length);
  expect(Buffer.from(changed).equals(Buffer.from(bytes))).toBe(false);
  await blobs.put(key, changed, CONTENT_TYPES.grove);
  return { key, size: changed.length };
}
