/**
 * Issue 11, items 3 and 6 on moto. A 10,000-tree build (1,000 groves of iris) through the real handlers, with the
 * write units of every landing computed from the item images the table's stream carries (DynamoDB's size rules: moto
 * reports no consumed capacity): they do not grow with the groves landed. And a build of 2,000 groves tolerating 300
 * long failures, which overflowed the one-item ledger, beside a build the sweeper cannot read: the sweeper handles
 * each on its own.
 */
import { readFileSync } from "node:fs";
import { GetItemCommand, PutItemCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { marshall } from "@aws-sdk/util-dynamodb";
import { MAX_ERROR_CHARS, newBuildRecord, parseBuildSpec, prepareDataset, submitBuild, type GroveStats } from "@canopy/core";
import { groveStats } from "@canopy/core/testing";
import { createSweeper } from "@canopy/functions";
import {
  canopyEventSources,
  clients,
  DynamoStreamReader,
  itemSize,
  lambdaContext,
  listOpenBuilds,
  queueState,
  startEmulator,
  writeUnits,
  type Item,
  type StreamRecord,
} from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { receiveNotifications, useAwsEmulator } from "./harness.ts";
import { adapters, handlersOn, provision, quietLogger } from "./e2e-support.ts";

useAwsEmulator();

const iris = readFileSync(new URL("../fixtures/iris.csv", import.meta.url));

/** Every record of a table's stream so far. */
async function streamRecords(streamArn: string, until: (records: StreamRecord[]) => boolean): Promise<StreamRecord[]> {
  const records: StreamRecord[] = [];
  const reader = new DynamoStreamReader(clients.dynamodbStreams(), async () => streamArn, { since: 0, pollIntervalMs: 50 });
  const stop = reader.start((batch) => void records.push(...batch));
  const deadline = Date.now() + 60_000;
  while (!until(records) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await stop();
  return records;
}

const image = (r: StreamRecord, which: "NewImage" | "OldImage") => r.dynamodb?.[which] as Item | undefined;
const num = (item: Item | undefined, name: string) => Number(item?.[name]?.N ?? NaN);

/**
 * The item the ledger before this one rewrote at every landing: the build's fields plus every landed grove (a number
 * set and a map of their stats, which had no digest then). Computed for comparison only: that ledger is gone.
 */
function oneItemLedger(counter: Item, landed: { grove: number; stats: GroveStats }[]): Item {
  const { lastSettled: _l, landedCount: _c, treesLanded: _t, open: _o, claims: _k, claimedAt: _a, ...rest } = counter;
  return {
    ...rest,
    ...(landed.length > 0 ? { landed: { NS: landed.map((l) => String(l.grove)) } } : {}),
    groveStats: {
      M: Object.fromEntries(landed.map(({ grove, stats: { digest: _d, ...stats } }) => [String(grove), { M: marshall(stats) as Record<string, AttributeValue> }])),
    },
  } as Item;
}

describe("scale", () => {
  it("a 10,000-tree build (1,000 groves) completes with one notification, every landing writing the same 4 write units", { timeout: 900_000 }, async () => {
    const resources = await provision("-10k", { visibilityTimeoutSeconds: 60 });
    const ports = adapters(resources);
    const handlers = handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports });
    const emulator = startEmulator({ ...canopyEventSources({ ...resources, handlers, trainerPollers: 4 }), maxConcurrency: 2 });
    const started = Date.now();
    let buildId = "";
    let notes: Awaited<ReturnType<typeof receiveNotifications>> = [];
    try {
      const prepared = await prepareDataset(iris, { label: "species" }, ports.blobs);
      const spec = parseBuildSpec({ dataset: "iris.csv", label: "species", n_estimators: 10_000, grove_size: 10, seed: 3, max_depth: 4 });
      buildId = (await submitBuild(spec, ports, prepared)).buildId;
      notes = await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 840_000 });
      notes.push(...(await receiveNotifications(resources.inboxUrl, { count: 1, timeoutMs: 2000 })));
    } finally {
      await emulator.stop();
    }
    const wallMs = Date.now() - started;
    expect(notes.map((n) => [n.notification.type, n.notification.buildId])).toEqual([["build.completed", buildId]]);
    const record = (await ports.ledger.get(buildId))!;
    expect(record).toMatchObject({ status: "COMPLETED", landedCount: 1000, treesLanded: 10_000 });
    expect(record.landed).toHaveLength(1000);

    // Each landing is one transaction: the counter's MODIFY and the grove entry's INSERT, both on the stream.
    const records = await streamRecords(resources.streamArn, (rs) => rs.some((r) => image(r, "NewImage")?.status?.S === "COMPLETED"));
    const entries = new Map<number, Item>();
    for (const r of records) if (r.eventName === "INSERT" && image(r, "NewImage")?.build) entries.set(num(image(r, "NewImage"), "grove"), image(r, "NewImage")!);
    const landings = records.filter((r) => r.eventName === "MODIFY" && num(image(r, "NewImage"), "landedCount") === num(image(r, "OldImage"), "landedCount") + 1);
    expect(landings).toHaveLength(1000);
    const units = landings.map((r) => {
      const grove = Number(image(r, "NewImage")!.lastSettled.M!.grove.N);
      return writeUnits(image(r, "OldImage"), image(r, "NewImage")!, { transactional: true }) + writeUnits(undefined, entries.get(grove)!, { transactional: true });
    });
    expect(new Set(units)).toEqual(new Set([4]));
    const counterBytes = landings.map((r) => itemSize(image(r, "NewImage")!));

    // The same landings in the one-item ledger: the item grew with every grove landed, and so did each write.
    const order = landings.map((r) => Number(image(r, "NewImage")!.lastSettled.M!.grove.N));
    const oneItemUnits = order.map((_, i) => {
      const landed = order.slice(0, i + 1).map((g) => ({ grove: g, stats: record.groveStats[g] }));
      return writeUnits(undefined, oneItemLedger(image(landings[i], "NewImage")!, landed));
    });
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    console.log(
      `scale: 1,000 groves (10,000 trees) on moto in ${(wallMs / 1000).toFixed(0)} s; counter ${Math.min(...counterBytes)}-${Math.max(...counterBytes)} bytes; ` +
        `write units per landing ${units[0]} (first) ... ${units.at(-1)} (last), ${sum(units)} in all; ` +
        `the one-item ledger (computed): ${oneItemUnits[0]} ... ${oneItemUnits[499]} (500th) ... ${oneItemUnits.at(-1)} (last), ${sum(oneItemUnits)} in all`,
    );
    expect(oneItemUnits.at(-1)).toBeGreaterThan(100);
  });

  it("2,000 groves with 300 tolerated long failures fit; the sweeper handles each build on its own, one it cannot read included", { timeout: 300_000 }, async () => {
    const resources = await provision("-2000");
    const ports = adapters(resources);
    const ledger = ports.ledger;
    const now = Date.now();
    const big = newBuildRecord({ buildId: "b-00000000000020a0", total: 2000, tolerated: 300, now });
    await ledger.create(big);
    await ledger.startTraining(big.buildId);
    const error = (g: number) => `TaskError: grove ${g}: ${"a 500-character error ".repeat(30)}`;
    const jobs = Array.from({ length: 2000 }, (_, g) => () =>
      g % 20 < 3 ? ledger.failGrove(big.buildId, g, error(g)) : ledger.landGrove(big.buildId, g, groveStats(g, { memoryMb: 1769, worker: "c0ffee12" })),
    );
    for (let i = 0; i < jobs.length; i += 2) await Promise.all(jobs.slice(i, i + 2).map((job) => job()));
    const summary = (await ledger.summary(big.buildId))!;
    expect(summary).toMatchObject({ status: "TRAINING", remaining: 0, failedCount: 300, landedCount: 1700 });

    // A stalled build (its tasks lost), and something in the open-builds index that is not a build's counter.
    const prepared = await prepareDataset(iris, { label: "species" }, ports.blobs);
    const stalled = await submitBuild(parseBuildSpec({ dataset: "iris.csv", label: "species", n_estimators: 4, grove_size: 2, seed: 1 }), ports, prepared);
    await clients.sqs().send(new PurgeQueueCommand({ QueueUrl: resources.queueUrl }));
    const broken = "b-00000000000bad00";
    await clients.dynamodb().send(new PutItemCommand({ TableName: resources.table, Item: { buildId: { S: broken }, open: { S: "1" }, createdAt: { N: "1" }, status: { S: "TRAINING" } } }));

    const sweeper = createSweeper({
      ports: async () => ({ ...ports, queueState: () => queueState(resources.queueUrl), openBuilds: () => listOpenBuilds(resources.table) }),
      logger: quietLogger(),
      clock: { now: () => Date.now() + 60 * 60_000 },
      policy: { stallMs: 30 * 60_000, leaseMs: 6 * 60_000 },
    });
    const swept = await sweeper({}, lambdaContext("canopy-sweeper", 256, 60_000, "us-east-1"));
    expect(swept.open).toBe(3);
    expect(swept.redriven).toEqual([big.buildId]);
    expect(swept.requeued).toEqual([stalled.buildId]);
    expect(swept.errors).toEqual([{ buildId: broken, error: `AwsInternalError: DynamoDB item "${broken}" is not a Canopy build counter` }]);
    expect(swept.failed).toEqual([]);

    const record = (await ledger.get(big.buildId))!;
    expect(record.failed).toHaveLength(300);
    expect(record.failed.every((f) => f.error.length <= MAX_ERROR_CHARS)).toBe(true);
    expect(record.landed).toHaveLength(1700);
    const counter = (await clients.dynamodb().send(new GetItemCommand({ TableName: resources.table, Key: { buildId: { S: big.buildId } } }))).Item!;
    console.log(`scale: a 2,000-grove counter with 300 failures (each error cut to ${MAX_ERROR_CHARS} characters) is ${itemSize(counter as Item)} bytes`);
    expect(itemSize(counter as Item)).toBeLessThan(2048);
  });
});
