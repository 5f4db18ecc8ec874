/**
 * Shared by the end-to-end tests: a digits build submitted through the real adapters on moto, trained and
 * aggregated by the real handlers under the event-source-mapping emulator, and the reference model the
 * embedded run (core's submit on memory ports) makes of the same spec.
 */
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { Logger } from "@aws-lambda-powertools/logger";
import {
  aggregate,
  isAggregationTrigger,
  keys,
  parseBuildSpec,
  prepareDataset,
  submitBuild,
  trainGrove,
  type BlobStore,
  type BuildLedger,
  type BuildRecord,
  type GroveTask,
  type Notifier,
  type TaskQueue,
} from "@canopy/core";
import { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "@canopy/core/testing";
import { createAggregator, createDeadLetterConsumer, createTrainer } from "@canopy/functions";
import {
  canopyEventSources,
  DynamoLedger,
  provisionResources,
  S3BlobStore,
  SnsNotifier,
  SqsDeadLetters,
  SqsTaskQueue,
  startEmulator,
  type CanopyHandlers,
  type InvocationInfo,
  type ProvisionedResources,
  type SnsDelivery,
} from "@canopy/runtime-aws";
import { receiveNotifications } from "./harness.ts";

export const digits = readFileSync(new URL("../fixtures/digits.csv", import.meta.url));
/** 4 groves of 3 trees: enough to shuffle and fail, small enough for 2 cores. */
export const SPEC = { dataset: "test/fixtures/digits.csv", label: "digit", n_estimators: 12, grove_size: 3, seed: 7, tags: { suite: "e2e" } };

export const quietLogger = () => new Logger({ serviceName: "canopy-e2e", logLevel: "SILENT" });

/** The embedded run of SPEC: what every AWS run must reproduce byte for byte. */
export async function referenceModel(spec: object = SPEC): Promise<{ buildId: string; model: Buffer }> {
  const ports = { blobs: new MemoryBlobStore(), ledger: new MemoryLedger(), queue: new MemoryQueue(), notifier: new MemoryNotifier() };
  const aggregations: Promise<unknown>[] = [];
  ports.ledger.watch((change) => {
    if (isAggregationTrigger(change)) aggregations.push(aggregate(change.new.buildId, ports));
  });
  const prepared = await prepareDataset(digits, { label: "digit" }, ports.blobs);
  const { buildId } = await submitBuild(parseBuildSpec(spec), ports, prepared);
  for (const task of ports.queue.drain()) await trainGrove(task, ports);
  await Promise.all(aggregations);
  if (ports.notifier.published.length !== 1) throw new Error("the reference build did not notify once");
  return { buildId, model: Buffer.from((await ports.blobs.get(keys.model(buildId)))!) };
}

export interface Ports {
  blobs: BlobStore;
  ledger: BuildLedger;
  notifier: Notifier;
  queue: TaskQueue;
}

export function adapters(r: ProvisionedResources): Ports {
  return { blobs: new S3BlobStore(r.bucket), ledger: new DynamoLedger(r.table), notifier: new SnsNotifier(r.topicArn), queue: new SqsTaskQueue(r.queueUrl) };
}

/** Fresh resources on the running moto (their own table, queues, topic), so builds of the same spec don't meet. */
export function provision(suffix: string, options: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {}) {
  return provisionResources({ suffix, visibilityTimeoutSeconds: options.visibilityTimeoutSeconds ?? 1, maxReceiveCount: options.maxReceiveCount ?? 3 });
}

/**
 * The real handlers on the given ports (the trainer's and dead-letter consumer's ports may be wrapped by a test). With
 * the dead-letter queue's URL, the trainer sends tasks that can never succeed there at once, as deployed.
 */
export function handlersOn(
  // The aggregator's queue: a study's aggregation queues its final build and halving rounds' new trees there.
  ports: { trainer: Pick<Ports, "blobs" | "ledger">; aggregator: Omit<Ports, "queue"> & Partial<Pick<Ports, "queue">>; deadLetter: Omit<Ports, "queue"> },
  options: { deadLetterQueueUrl?: string } = {},
): CanopyHandlers {
  const url = options.deadLetterQueueUrl;
  return {
    trainer: createTrainer({ ports: async () => ports.trainer, logger: quietLogger(), deadLetters: async () => (url ? new SqsDeadLetters(url) : undefined) }),
    aggregator: createAggregator({ ports: async () => ports.aggregator, logger: quietLogger() }),
    deadLetter: createDeadLetterConsumer({ ports: async () => ports.deadLetter, logger: quietLogger() }),
  };
}

/** The real handlers finding their resources as deployed ones do (functions/src/resources.ts: CANOPY_* here). */
export function deployedHandlers(): CanopyHandlers {
  return {
    trainer: createTrainer({ logger: quietLogger() }),
    aggregator: createAggregator({ logger: quietLogger() }),
    deadLetter: createDeadLetterConsumer({ logger: quietLogger() }),
  };
}

export interface RunOptions {
  resources: ProvisionedResources;
  handlers: CanopyHandlers;
  /** Ports used to submit (the queue may be wrapped to duplicate messages). */
  submit: Ports;
  spec?: object;
  /** Rewrites the tasks before they are queued (a poison task, say). */
  tasks?: (tasks: GroveTask[]) => GroveTask[] | Promise<GroveTask[]>;
  streamDeliveries?: number;
  timeoutMs?: number;
}

export interface RunResult {
  buildId: string;
  notification: SnsDelivery;
  /** Anything that reached the inbox in the 2 s after the first notification (expected: nothing). */
  extra: SnsDelivery[];
  record: BuildRecord;
  invocations: InvocationInfo[];
  errors: unknown[];
  stats: ReturnType<typeof startEmulator>["stats"];
  /** Epoch ms when the first notification was read from the inbox. */
  receivedAt: number;
}

/** Submits SPEC and runs the emulator until its notification is in the inbox, then checks nothing else follows. */
export async function runBuild(o: RunOptions): Promise<RunResult> {
  const invocations: InvocationInfo[] = [];
  const errors: unknown[] = [];
  const emulator = startEmulator({
    ...canopyEventSources({
      queueUrl: o.resources.queueUrl,
      deadLetterQueueUrl: o.resources.deadLetterQueueUrl,
      streamArn: o.resources.streamArn,
      handlers: o.handlers,
      memoryMb: 1769,
      trainerPollers: 2,
      ...(o.streamDeliveries ? { streamDeliveries: o.streamDeliveries } : {}),
    }),
    // Two trainers (or a trainer and the aggregator) at once: the harness's moto applies conditional writes atomically.
    maxConcurrency: 2,
    onInvocation: (info) => invocations.push(info),
    onError: (err) => errors.push(err),
  });
  try {
    const prepared = await prepareDataset(digits, { label: "digit" }, o.submit.blobs);
    const queue: TaskQueue = o.tasks ? { send: async (tasks) => o.submit.queue.send(await o.tasks!(tasks)) } : o.submit.queue;
    const { buildId } = await submitBuild(parseBuildSpec(o.spec ?? SPEC), { ...o.submit, queue }, prepared);
    const [notification] = await receiveNotifications(o.resources.inboxUrl, { count: 1, timeoutMs: o.timeoutMs ?? 60_000 });
    const receivedAt = Date.now();
    if (!notification) throw new Error(`no notification for ${buildId} within ${o.timeoutMs ?? 60_000} ms; emulator errors: ${errors.map(String).join("; ")}`);
    const extra = await receiveNotifications(o.resources.inboxUrl, { count: 1, timeoutMs: 2000 });
    const record = (await o.submit.ledger.get(buildId))!;
    return { buildId, notification, extra, record, invocations, errors, stats: emulator.stats, receivedAt };
  } finally {
    await emulator.stop();
  }
}

/** mulberry32-style hash of (seed, grove, attempt) to [0, 1): the same injection whatever the delivery order. */
export function unitHash(seed: number, grove: number, attempt: number): number {
  let t = (seed ^ Math.imul(grove + 1, 0x9e3779b1) ^ Math.imul(attempt + 1, 0x85ebca77)) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/**
 * A trainer's ports that crash, seeded per (build, grove, attempt): 15% of attempts before storing the grove, 15%
 * after landing it. `injected` lists each crash.
 */
export function crashingTrainerPorts(ports: Pick<Ports, "blobs" | "ledger">): { blobs: BlobStore; ledger: BuildLedger; injected: string[] } {
  const attempts = new Map<string, number>();
  const injected: string[] = [];
  const crash = (buildId: string, grove: number, point: "store" | "land") => {
    const key = `${buildId}/${grove}`;
    const attempt = attempts.get(`${key}/${point}`) ?? 0;
    attempts.set(`${key}/${point}`, attempt + 1);
    const h = unitHash(Number.parseInt(buildId.slice(2, 10), 16) >>> 0, grove, attempt);
    if ((point === "store" && h < 0.15) || (point === "land" && h >= 0.85)) {
      injected.push(`${key} ${point} #${attempt}`);
      throw new Error(`injected crash ${point === "store" ? "before storing" : "after landing"} grove ${grove} of ${buildId}`);
    }
  };
  const blobs: BlobStore = {
    get: (k) => ports.blobs.get(k),
    exists: (k) => ports.blobs.exists(k),
    async put(k, bytes, type) {
      const m = /^builds\/(b-[0-9a-f]{16})\/groves\/(\d+)\.grove$/.exec(k);
      if (m) crash(m[1], Number(m[2]), "store");
      await ports.blobs.put(k, bytes, type);
    },
  };
  const ledger: BuildLedger = Object.create(ports.ledger, {
    landGrove: {
      value: async (buildId: string, grove: number, stats: Parameters<BuildLedger["landGrove"]>[2]) => {
        const r = await ports.ledger.landGrove(buildId, grove, stats);
        crash(buildId, grove, "land");
        return r;
      },
    },
  });
  return { blobs, ledger, injected };
}

/**
 * The real handlers on `ports` under the emulator, the trainer's ports crashing (crashingTrainerPorts), every stream
 * record delivered twice, two trainer pollers: what the fault-injected end-to-end runs (a study, a partitioned run) share.
 */
export function faultyEmulator(resources: ProvisionedResources, ports: Ports) {
  const trainer = crashingTrainerPorts(ports);
  const invocations: InvocationInfo[] = [];
  const errors: unknown[] = [];
  const emulator = startEmulator({
    ...canopyEventSources({
      queueUrl: resources.queueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      streamArn: resources.streamArn,
      handlers: handlersOn({ trainer: { blobs: trainer.blobs, ledger: trainer.ledger }, aggregator: ports, deadLetter: ports }),
      memoryMb: 1769,
      trainerPollers: 2,
      streamDeliveries: 2,
    }),
    maxConcurrency: 2,
    onInvocation: (info) => invocations.push(info),
    onError: (err) => errors.push(err),
  });
  return { emulator, injected: trainer.injected, invocations, errors };
}

/** A writable that keeps what is written to it: a command's stdout or stderr, in process. */
export function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = "";
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

/** Polls `probe` every 100 ms until it gives a value (not undefined). */
export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
