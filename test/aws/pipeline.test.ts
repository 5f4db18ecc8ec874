import {
  aggregate,
  decodeGroveTask,
  isAggregationTrigger,
  keys,
  parseBuildSpec,
  prepareDataset,
  submitBuild,
  trainGrove,
  type AggregateOutcome,
  type BuildLedger,
  type BlobStore,
  type Notifier,
  type TaskQueue,
} from "@canopy/core";
import { awsPorts } from "@canopy/runtime-aws";
import { expect, it } from "vitest";
import { digits, referenceModel } from "./e2e-support.ts";
import { receiveMessages, receiveNotifications, useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator({ visibilityTimeoutSeconds: 10 });
const specInput = { dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 12, grove_size: 3, seed: 5, tags: { suite: "aws" } };

interface Ports {
  blobs: BlobStore;
  ledger: BuildLedger;
  queue: TaskQueue;
  notifier: Notifier;
}

/** Wires the aggregator to the ledger's change feed; every trigger is delivered twice, as a stream may. */
function aggregateOnTrigger(ports: Ports) {
  const outcomes: Promise<AggregateOutcome>[] = [];
  const stop = ports.ledger.watch((change) => {
    if (!isAggregationTrigger(change)) return;
    for (let i = 0; i < 2; i++) outcomes.push(aggregate(change.new.buildId, ports));
  });
  return { outcomes, stop };
}

it("trains a digits build through S3, DynamoDB (and its stream), SQS and SNS into the memory ports' model, notifying once", async () => {
  const ports = awsPorts(aws.current.resources);
  const { outcomes, stop } = aggregateOnTrigger(ports);
  try {
    const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
    const { buildId } = await submitBuild(parseBuildSpec(specInput), ports, prepared);

    // A trainer: each task from SQS, the first one delivered twice at once.
    const tasks = (await receiveMessages(aws.current.resources.queueUrl, { count: 4 })).map((m) => decodeGroveTask(m.body));
    expect(tasks.map((t) => t.grove).sort()).toEqual([0, 1, 2, 3]);
    const results = await Promise.all([trainGrove(tasks[0], ports), trainGrove(tasks[0], ports)]);
    expect(results.filter((r) => r.status === "landed")).toHaveLength(1);
    for (const task of tasks.slice(1)) await trainGrove(task, ports);
    const lastLanded = performance.now();

    const [delivery] = await receiveNotifications(aws.current.resources.inboxUrl, { count: 1, timeoutMs: 20_000 });
    const latencyMs = performance.now() - lastLanded;
    expect(delivery.notification).toMatchObject({ type: "build.completed", buildId, status: "COMPLETED", tags: { suite: "aws" }, modelKey: keys.model(buildId) });
    expect(delivery.notification.metrics?.accuracy).toBeGreaterThan(0.7);
    expect(delivery.attributes).toMatchObject({ buildId, status: "COMPLETED" });

    expect((await Promise.all(outcomes)).map((o) => o.outcome).sort()).toEqual(["completed", "not-claimed"]);
    const record = await ports.ledger.get(buildId);
    expect(record).toMatchObject({ status: "COMPLETED", remaining: 0, landed: [0, 1, 2, 3] });
    expect(Object.keys(record!.groveStats).sort()).toEqual(["0", "1", "2", "3"]);

    const memory = await referenceModel(specInput);
    expect(memory.buildId).toBe(buildId);
    const model = (await ports.blobs.get(keys.model(buildId)))!;
    expect(Buffer.from(model).equals(Buffer.from(memory.model))).toBe(true);

    expect(await receiveNotifications(aws.current.resources.inboxUrl, { count: 1, timeoutMs: 1000 })).toEqual([]);
    console.log(`last grove landed -> notification in the inbox: ${latencyMs.toFixed(0)} ms (stream poll 250 ms, merge, evaluate, S3, SNS->SQS)`);
  } finally {
    stop();
  }
});
