// Section: estimate. Core's fan-out simulator against the real thing at small scale: builds of 10, 20 and 50 groves
// of digits through the real adapters and handlers on moto under the event-source-mapping emulator (what
// `canopy dev` runs), observed from submission to the notification in the inbox, against the simulator fed the
// emulator's own parameters: its pollers and concurrency, no cold starts, one JS thread for every handler's CPU work
// (already warm: the work was measured in this process first), and moto's request latencies measured here while the
// emulator polls it. Then `canopy estimate`'s table for digits on AWS.
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { PublishCommand } from "@aws-sdk/client-sns";
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { estimateFanout, parseBuildSpec, prepareDataset, submitBuild, type FanoutAssumptions } from "@canopy/core";
import { bytesSource, openTable } from "@canopy/core/ingest";
import { createAggregator, createDeadLetterConsumer, createTrainer, functionLogger } from "@canopy/functions";
import {
  canopyEventSources,
  clients,
  DynamoLedger,
  S3BlobStore,
  SqsTaskQueue,
  startEmulator,
  type ProvisionedResources,
} from "@canopy/runtime-aws";
import { estimateSettings } from "../packages/cli/src/estimate-options.ts";
import { estimateBuilds, measureGrove, workProfile } from "../packages/cli/src/estimate.ts";
import { receiveNotifications, startAwsEmulator } from "../test/aws/harness.ts";
import { check, type Section } from "./section.ts";
import type { Table } from "./table.ts";

const DIGITS = "test/fixtures/digits.csv";
/** Trees per grove: about 0.1-0.2 s of training on digits, so requests and training both count. */
const GROVE_SIZE = 5;
const GROVES = [10, 20, 50];
/** The emulator's trainer pollers and invocation limit, as the end-to-end tests run it. */
const POLLERS = 2;
const TARGET = 0.3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed(n: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await work(i);
    out.push((performance.now() - t) / 1000);
  }
  return median(out);
}

/**
 * moto's latencies, measured while the emulator polls it (as during a build): the emulator's own parameters for the
 * simulator (no cold starts, nothing ramps).
 */
async function emulatorAssumptions(r: ProvisionedResources): Promise<Partial<FanoutAssumptions>> {
  const s3 = clients.s3();
  const db = clients.dynamodb();
  const sqs = clients.sqs();
  const small = new Uint8Array(1024);
  const big = new Uint8Array(4 * 1024 * 1024);
  const put = await timed(9, (i) => s3.send(new PutObjectCommand({ Bucket: r.bucket, Key: `bench/small-${i}`, Body: small })));
  const get = await timed(9, async (i) => (await s3.send(new GetObjectCommand({ Bucket: r.bucket, Key: `bench/small-${i}` }))).Body!.transformToByteArray());
  const s3RequestS = (put + get) / 2;
  const write = await timed(3, (i) => s3.send(new PutObjectCommand({ Bucket: r.bucket, Key: `bench/big-${i}`, Body: big })));
  const read = await timed(3, async (i) => (await s3.send(new GetObjectCommand({ Bucket: r.bucket, Key: `bench/big-${i}` }))).Body!.transformToByteArray());
  const getItem = await timed(9, () => db.send(new GetItemCommand({ TableName: r.table, Key: { buildId: { S: "bench#absent" } }, ConsistentRead: true })));
  const putItem = await timed(9, (i) => db.send(new PutItemCommand({ TableName: r.table, Item: { buildId: { S: `bench#${i}` } } })));
  const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: "bench-latency" }))).QueueUrl!;
  const entries = Array.from({ length: 10 }, (_, i) => ({ Id: String(i), MessageBody: "{}" }));
  const send = await timed(5, () => sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries })));
  const receipts: string[] = [];
  const receive = await timed(9, async () => {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }));
    receipts.push(...(got.Messages ?? []).map((m) => m.ReceiptHandle!));
  });
  const release = await timed(receipts.length, (i) => sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: "0", ReceiptHandle: receipts[i] }] })));
  const publish = await timed(5, () => clients.sns().send(new PublishCommand({ TopicArn: r.topicArn, Message: "{}" })));
  await receiveNotifications(r.inboxUrl, { count: 5, timeoutMs: 3000 }).catch(() => []);
  return {
    deliveryS: receive,
    releaseS: release,
    coldStartS: 0,
    aggregatorColdStartS: 0,
    dynamoRequestS: (getItem + putItem) / 2,
    s3RequestS,
    s3ReadBytesPerS: big.length / Math.max(1e-6, read - s3RequestS),
    s3WriteBytesPerS: big.length / Math.max(1e-6, write - s3RequestS),
    sqsSendBatchS: send,
    streamTriggerS: await streamTrigger(r),
    snsPublishS: publish,
  };
}

/**
 * moto's request latencies while a build runs on it, sampled from this process every 50 ms: moto is one Python
 * process sharing the machine's cores with the handlers (and everything else running), so under a build its requests
 * take several times what they take idle. The means stand in for the latencies the handlers meet.
 */
function sampleLatencies(r: ProvisionedResources, queueUrl: string): { stop: () => Promise<Partial<FanoutAssumptions>> } {
  const dynamo: number[] = [];
  const s3: number[] = [];
  const sqs: number[] = [];
  let running = true;
  const time = async (into: number[], work: () => Promise<unknown>) => {
    const t = performance.now();
    await work();
    into.push((performance.now() - t) / 1000);
  };
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await time(dynamo, () => clients.dynamodb().send(new GetItemCommand({ TableName: r.table, Key: { buildId: { S: "bench#absent" } }, ConsistentRead: true })));
      await time(s3, () => clients.s3().send(new PutObjectCommand({ Bucket: r.bucket, Key: `bench/sample-${i % 10}`, Body: new Uint8Array(1024) })));
      await time(sqs, () => clients.sqs().send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 0 })));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return {
    async stop() {
      running = false;
      await loop;
      return { dynamoRequestS: mean(dynamo), s3RequestS: mean(s3), deliveryS: mean(sqs), releaseS: mean(sqs) };
    },
  };
}

/** A ledger write -> the emulator's stream mapping invokes its handler (its 100 ms poll and moto's stream calls). */
async function streamTrigger(r: ProvisionedResources): Promise<number> {
  const arrived: number[] = [];
  const emulator = startEmulator({
    streams: [{ functionName: "probe", streamArn: r.streamArn, handler: async () => void arrived.push(performance.now()) }],
    onError: () => {},
  });
  const delays: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the reader finds its shard
    for (let i = 0; i < 5; i++) {
      const seen = arrived.length;
      const t = performance.now();
      await clients.dynamodb().send(new PutItemCommand({ TableName: r.table, Item: { buildId: { S: `bench#stream-${i}` } } }));
      while (arrived.length === seen && performance.now() - t < 10_000) await new Promise((resolve) => setTimeout(resolve, 5));
      delays.push((arrived[seen] - t) / 1000);
    }
  } finally {
    await emulator.stop();
  }
  return median(delays);
}

export const estimateSection: Section = async (ctx) => {
  const digits = readFileSync(DIGITS);
  const aws = await startAwsEmulator({ suffix: "-bench-estimate", visibilityTimeoutSeconds: 60, maxReceiveCount: 3 });
  const runs: { groves: number; trees: number; observedS: number; predictedS: number; error: number; during: Partial<FanoutAssumptions> }[] = [];
  let assumptions: Partial<FanoutAssumptions>;
  let estimateTable: Table;
  try {
    const r = aws.resources;
    const specOf = (groves: number) =>
      parseBuildSpec({ dataset: DIGITS, label: "digit", n_estimators: groves * GROVE_SIZE, grove_size: GROVE_SIZE, seed: 1000 + groves });
    // The work per tree, measured as canopy estimate measures it (same machine: CPU factor 1). The handlers then run
    // in this process, whose engine code is compiled by now: no warm-up.
    const measurement = await measureGrove(specOf(GROVES[0]), await openTable(bytesSource(digits, "digits.csv")));
    const profile = { ...workProfile(measurement, 1), warmupS: 0 };

    const blobs = new S3BlobStore(r.bucket);
    const ledger = new DynamoLedger(r.table);
    const queue = new SqsTaskQueue(r.queueUrl);
    const prepared = await prepareDataset(digits, { label: "digit" }, blobs);
    const logger = (fn: string) => functionLogger(fn, "SILENT");
    const errors: unknown[] = [];
    const emulator = startEmulator({
      ...canopyEventSources({
        queueUrl: r.queueUrl,
        deadLetterQueueUrl: r.deadLetterQueueUrl,
        streamArn: r.streamArn,
        memoryMb: 1769,
        trainerPollers: POLLERS,
        handlers: {
          trainer: createTrainer({ logger: logger("trainer") }),
          aggregator: createAggregator({ logger: logger("aggregator") }),
          deadLetter: createDeadLetterConsumer({ logger: logger("dlq") }),
        },
      }),
      maxConcurrency: POLLERS,
      onError: (err) => errors.push(err),
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000)); // its pollers and stream reader running
      ctx.log("estimate: measuring moto's request latencies while the emulator polls it");
      assumptions = await emulatorAssumptions(r);
      const latencyQueue = (await clients.sqs().send(new CreateQueueCommand({ QueueName: "bench-latency-empty" }))).QueueUrl!;
      ctx.log(`estimate: ${JSON.stringify(Object.fromEntries(Object.entries(assumptions).map(([k, v]) => [k, Number(v.toPrecision(3))])))}`);
      for (const groves of GROVES) {
        const spec = specOf(groves);
        ctx.log(`estimate: ${groves} groves of ${GROVE_SIZE} trees on the emulator`);
        const sampler = sampleLatencies(r, latencyQueue);
        const t0 = performance.now();
        const { buildId } = await submitBuild(spec, { blobs, ledger, queue }, prepared);
        const [note] = await receiveNotifications(r.inboxUrl, { count: 1, timeoutMs: 300_000 });
        const observedS = (performance.now() - t0) / 1000;
        const during = await sampler.stop();
        if (note?.notification.buildId !== buildId || note.notification.status !== "COMPLETED")
          throw new Error(`estimate: build ${buildId} did not complete (${JSON.stringify(note?.notification)}); emulator errors: ${errors.map(String).join("; ")}`);
        const predicted = estimateFanout({
          trees: spec.n_estimators,
          groveSize: GROVE_SIZE,
          profile,
          trainer: { memoryMb: 1769, scaling: { mode: "fixed", concurrency: POLLERS } },
          aggregator: { memoryMb: 1769 },
          assumptions: { ...assumptions, ...during },
          coldStarts: false,
          computeSlots: 1,
        });
        runs.push({ groves, trees: spec.n_estimators, observedS, predictedS: predicted.wallS, error: Math.abs(predicted.wallS - observedS) / observedS, during });
        ctx.log(`estimate: observed ${observedS.toFixed(2)} s, predicted ${predicted.wallS.toFixed(2)} s`);
      }
    } finally {
      await emulator.stop();
    }

    // canopy estimate's table for digits on AWS (default settings, CPU factor 1).
    const spec = parseBuildSpec({ dataset: DIGITS, label: "digit", n_estimators: 100, grove_size: 10 });
    const onAws = estimateBuilds(spec, await measureGrove(spec, await openTable(bytesSource(digits, "digits.csv"))), estimateSettings({}, {}), 2000);
    estimateTable = {
      title: "canopy estimate for digits on AWS: grove size 10, trainer 1,769 MB, aggregator 3,008 MB, CPU factor 1 (AWS_ASSUMPTIONS)",
      headers: ["trees", "groves", "trainer mapping", "wall s", "trainers at once", "cold starts", "cost $"],
      rows: onAws.rows.map((row) => {
        const e = row.estimate;
        const mode = e.scaling.mode === "default" ? `default (≤${e.scaling.maxConcurrency})` : e.scaling.mode === "provisioned" ? `provisioned (${e.scaling.minPollers}-${e.scaling.maxPollers})` : "fixed";
        return [row.trees.toLocaleString("en-US"), String(e.groves), mode, e.wallS.toFixed(1), String(e.peakConcurrency), String(e.containers), e.cost.usd.toFixed(4)];
      }),
      notes: onAws.suggestions.map(
        (s) => `${s.mode}: for 100 trees, fastest grove size ${s.fastest?.groveSize} (${s.fastest?.wallS.toFixed(1)} s), cheapest ${s.cheapest?.groveSize} ($${s.cheapest?.cost.usd.toFixed(5)})`,
      ),
    };
  } finally {
    await aws.stop();
  }

  const worst = Math.max(...runs.map((x) => x.error));
  const validation: Table = {
    title: `Simulator vs the emulator on moto: digits in groves of ${GROVE_SIZE}, ${POLLERS} pollers, submission to notification`,
    headers: ["groves", "trees", "observed s", "predicted s", "error", "moto ms during it: DynamoDB / S3 / SQS"],
    rows: runs.map((x) => [
      String(x.groves),
      String(x.trees),
      x.observedS.toFixed(2),
      x.predictedS.toFixed(2),
      `${(x.error * 100).toFixed(1)}%`,
      [x.during.dynamoRequestS, x.during.s3RequestS, x.during.deliveryS].map((v) => ((v ?? 0) * 1000).toFixed(0)).join(" / "),
    ]),
    notes: [
      `predicted: core's estimateFanout with the emulator's parameters: ${POLLERS} pollers and invocations at once, no cold starts, one CPU for every handler (one JS thread), ` +
        "the work per tree measured beforehand in this process (so no warm-up), moto's request latencies sampled during the build (moto shares the cores with the handlers: " +
        "under a build its requests take several times their idle time), and measured idle:",
      Object.entries(assumptions).map(([k, v]) => `${k} ${Number(v.toPrecision(3))}`).join(", "),
    ],
  };
  return {
    title: "Estimate",
    tables: [validation, estimateTable],
    targets: [
      check(
        `simulator vs emulator: |predicted − observed| / observed ≤ ${TARGET * 100}% for ${GROVES.join(", ")} groves`,
        runs.map((x) => `${x.groves}: ${(x.error * 100).toFixed(1)}%`).join(", "),
        worst <= TARGET,
      ),
    ],
    raw: { runs, assumptions, groveSize: GROVE_SIZE, pollers: POLLERS },
  };
};
