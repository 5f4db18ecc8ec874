import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { BuildRecord, BuildReport, LedgerChange } from "@canopy/core";
import { parseHttpUrl, parseWorkers } from "../args.ts";
import { addSpecOptions } from "../spec-options.ts";
import { FailedError, fileError, UsageError } from "../errors.ts";
import type { GroveProgress, ProgressView } from "../progress.ts";
import type { SpecFlags } from "../spec.ts";

export interface DevOptions extends SpecFlags {
  endpoint: string;
  suffix?: string;
  concurrency?: number;
  memory?: number;
  visibilityTimeout?: number;
  maxReceiveCount?: number;
  once?: boolean;
  verbose?: boolean;
}

export interface DevIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream;
  /** Stops the emulator (default: SIGINT / SIGTERM). */
  signal?: AbortSignal;
}

/**
 * Adds `canopy dev` to the program (as a subcommand, so it inherits the program's error handling). Only the
 * definition: the AWS SDK, the handlers and the engine are imported when the command runs.
 */
export function addDevCommand(canopy: Command): Command {
  const command = canopy
    .command("dev")
    .summary("run the AWS pipeline on an emulator (LocalStack, moto)")
    .description(
      "Run Canopy's Lambda handlers in this process against an AWS emulator: create the bucket, table (with its stream), " +
        "grove queue and dead-letter queue, and topic if missing, then poll them as Lambda's event source mappings would " +
        "(the trainer on the queue, the aggregator on the table's stream through the same filter the deployed app uses, " +
        "the dead-letter consumer on the DLQ) and show every build's progress like canopy train. With <data.csv>, also " +
        "submit a build of it; with --once, exit when that build ends.",
    )
    .argument("[data.csv]", "submit a build of this CSV (same options as canopy train)")
    .requiredOption("--endpoint <url>", "the emulator, e.g. http://localhost:4566 (LocalStack) or http://127.0.0.1:5000 (moto_server)", parseHttpUrl)
    .option("--suffix <s>", "append to every resource name (canopy-artifacts<s>, canopy-builds<s>, ...)")
    .option("--concurrency <n>", "handler invocations at once (default 1: a stock moto_server can lose concurrent updates to one item; raise it for LocalStack)", parseWorkers)
    .option("--memory <mb>", "memory reported to the handlers, for billed GB-s (default 1769)", parseWorkers)
    .option("--visibility-timeout <s>", "grove queue visibility timeout in seconds: how soon a failed grove is retried (default 30)", parseWorkers)
    .option("--max-receive-count <n>", "deliveries before a grove task goes to the dead-letter queue (default 3)", parseWorkers)
    .option("--once", "with <data.csv>: exit when the submitted build ends (exit 1 if it failed)")
    .option("--verbose", "print the handlers' structured logs (JSON lines) on stdout");
  // The build options are canopy train's own (one declaration, the same parsers and help).
  return addSpecOptions(command).action(async (data: string | undefined, options: DevOptions) => {
    await dev(data, options);
  });
}

/** Sets variables for the SDK (endpoint, a region, fake credentials if none) and returns a restore function. */
export function emulatorEnv(endpoint: string): () => void {
  const saved = new Map<string, string | undefined>();
  const set = (key: string, value: string) => {
    if (!saved.has(key)) saved.set(key, process.env[key]);
    process.env[key] = value;
  };
  set("AWS_ENDPOINT_URL", endpoint);
  // The SDK warns on Node 20 about releases due in 2027; noise on every dev run.
  if (!process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED) set("AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED", "true");
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) set("AWS_REGION", "us-east-1");
  // Emulators accept any credentials; without some the SDK refuses to sign.
  if (!process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    set("AWS_ACCESS_KEY_ID", "test");
    set("AWS_SECRET_ACCESS_KEY", "test");
  }
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

export function unreachable(endpoint: string, err: unknown): Error {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ECONNRESET")
    return new FailedError(`cannot reach the emulator at ${endpoint} (${code}); start LocalStack or moto_server first`);
  return err as Error;
}

export async function dev(data: string | undefined, options: DevOptions, io: DevIo = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  if (options.once && data === undefined) throw new UsageError("--once needs <data.csv>: it waits for the build it submits");
  let csv: Uint8Array | undefined;
  let spec: import("@canopy/core").BuildSpec | undefined;
  if (data !== undefined) {
    const { buildSpec } = await import("../spec.ts");
    spec = buildSpec(data, options);
    csv = await readFile(data).then(
      (b) => new Uint8Array(b),
      (err: unknown) => {
        throw fileError(err, data, "data file") ?? err;
      },
    );
  }

  const endpoint = options.endpoint.replace(/\/$/, "");
  const restoreEnv = emulatorEnv(endpoint);
  const aws = await import("@canopy/runtime-aws");
  const functions = await import("@canopy/functions");
  const core = await import("@canopy/core");
  const { progressView } = await import("../progress.ts");
  const { summary } = await import("./train.ts");
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);

  aws.resetClients();
  let resources: Awaited<ReturnType<typeof aws.provisionResources>>;
  try {
    resources = await aws.provisionResources({
      ...(options.suffix !== undefined ? { suffix: options.suffix } : {}),
      ...(options.visibilityTimeout !== undefined ? { visibilityTimeoutSeconds: options.visibilityTimeout } : {}),
      ...(options.maxReceiveCount !== undefined ? { maxReceiveCount: options.maxReceiveCount } : {}),
    });
  } catch (err) {
    aws.resetClients();
    restoreEnv();
    throw unreachable(endpoint, err);
  }
  const resourceVars = aws.resourceEnv(resources);
  const savedVars = Object.keys(resourceVars).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, resourceVars);
  note(`dev: emulating Lambda against ${endpoint}: bucket ${resources.bucket}, table ${resources.table}, queue ${resources.queueUrl}, topic ${resources.topicArn}`);
  note(`dev: to publish builds here, use AWS_ENDPOINT_URL=${endpoint} ${Object.entries(resourceVars).map(([k, v]) => `${k}=${v}`).join(" ")}`);

  const logger = (fn: string) => functions.functionLogger(fn, options.verbose ? "INFO" : "SILENT");
  const blobs = new aws.S3BlobStore(resources.bucket);
  const ledger = new aws.DynamoLedger(resources.table, undefined, { pollIntervalMs: 100, onStreamError: (err) => note(`warning: ledger stream: ${core.errorLine(err)}`) });

  // Progress per build, from the ledger's stream: the same view and summary as canopy train.
  const finished = new Map<string, BuildRecord>();
  const waiters = new Map<string, (r: BuildRecord) => void>();
  const builds = new Map<string, { view?: ProgressView; treesTotal?: number; chain: Promise<void>; status?: string; settled?: number }>();
  const show = async (change: LedgerChange) => {
    const r = change.new;
    const b = builds.get(r.buildId)!;
    if (b.status === "COMPLETED" || b.status === "FAILED") return;
    if (!b.view) {
      const manifest = await core.readManifest(blobs, r.buildId).catch(() => undefined);
      b.treesTotal = manifest ? manifest.groves[manifest.groves.length - 1].treeEnd : undefined;
      b.view = await progressView(stderr);
      b.view.note(`build ${r.buildId}: ${r.total} groves${b.treesTotal !== undefined ? `, ${b.treesTotal} trees` : ""}`);
    }
    const treesDone = r.landed.reduce((sum, g) => sum + (r.groveStats[g]?.trees ?? 0), 0);
    const progress: GroveProgress = {
      buildId: r.buildId,
      landed: r.landed.length,
      failed: r.failed.length,
      total: r.total,
      treesDone,
      treesTotal: b.treesTotal ?? treesDone,
      elapsedMs: r.updatedAt - r.createdAt,
    };
    // Like canopy train: one update per grove settling (the first one only sets the rate's base).
    const settled = r.landed.length + r.failed.length;
    if (settled !== b.settled) {
      b.settled = settled;
      b.view.update(progress);
    }
    if (r.status === "AGGREGATING" && b.status !== "AGGREGATING") b.view.note(`${r.buildId}: all groves in; merging and evaluating`);
    b.status = r.status;
    if (r.status === "COMPLETED") {
      b.view.stop();
      const reportBytes = r.result ? await blobs.get(r.result.reportKey) : undefined;
      if (reportBytes && r.result) {
        const report = JSON.parse(new TextDecoder().decode(reportBytes)) as BuildReport;
        const url = (key: string) => `s3://${resources.bucket}/${key}`;
        stdout.write(`${summary(report, url(r.result.modelKey), url(r.result.reportKey))}\n`);
        const usd = report.cost?.usd.total;
        if (usd !== undefined) note(`${r.buildId}: estimated AWS cost $${usd.toFixed(6)} (${report.cost.totals.billedGbS.toFixed(1)} GB-s at ${options.memory ?? 1769} MB)`);
      } else note(`build ${r.buildId} completed (report not readable)`);
    }
    if (r.status === "FAILED") {
      b.view.stop();
      note(`build ${r.buildId} failed: ${r.reason ?? "no reason recorded"}`);
    }
    if (r.status === "COMPLETED" || r.status === "FAILED") {
      finished.set(r.buildId, r);
      waiters.get(r.buildId)?.(r);
    }
  };
  const unwatch = ledger.watch((change) => {
    const b = builds.get(change.new.buildId) ?? { chain: Promise.resolve() };
    builds.set(change.new.buildId, b);
    b.chain = b.chain
      .then(() => show(change))
      .catch((err: unknown) => {
        note(`warning: progress of ${change.new.buildId}: ${core.errorLine(err)}`);
      });
  });

  const emulator = aws.startEmulator({
    ...aws.canopyEventSources({
      queueUrl: resources.queueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      streamArn: resources.streamArn,
      memoryMb: options.memory ?? 1769,
      // As many trainer batches in flight as invocations may run (the limit itself is global).
      trainerPollers: options.concurrency ?? 1,
      handlers: {
        trainer: functions.createTrainer({ logger: logger("trainer") }),
        aggregator: functions.createAggregator({ logger: logger("aggregator") }),
        deadLetter: functions.createDeadLetterConsumer({ logger: logger("dlq") }),
      },
    }),
    ...(options.concurrency !== undefined ? { maxConcurrency: options.concurrency } : {}),
    onInvocation: (i) => {
      if (i.error) note(`warning: ${i.functionName} threw: ${core.errorLine(i.error)}`);
      else if (i.failed > 0) note(`warning: ${i.functionName}: ${i.failed} of ${i.records} record(s) failed; SQS will retry them`);
    },
    onError: (err) => note(`warning: ${core.errorLine(err)}`),
  });

  const stopped = new AbortController();
  const onSignal = () => stopped.abort();
  if (!io.signal) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  } else io.signal.addEventListener("abort", onSignal, { once: true });
  const aborted = new Promise<void>((resolve) => stopped.signal.addEventListener("abort", () => resolve(), { once: true }));

  let outcome: BuildRecord | undefined;
  try {
    let submitted: string | undefined;
    if (spec && csv) {
      const queue = new aws.SqsTaskQueue(resources.queueUrl);
      const prepared = await core.prepareDataset(
        csv,
        { ...(spec.label !== undefined ? { label: spec.label } : {}), task: spec.task, ...(spec.columns ? { columns: spec.columns } : {}) },
        blobs,
      );
      const submission = await core.submitBuild(spec, { blobs, ledger, queue }, prepared);
      submitted = submission.buildId;
      if (!submission.created) note(`build ${submitted} already exists (${submission.record.status}); watching it`);
      const status = submission.record.status;
      // A build that had already ended shows no new progress: report it from the ledger.
      if (!submission.created && (status === "COMPLETED" || status === "FAILED")) finished.set(submitted, submission.record);
    }
    if (options.once && submitted) {
      const id = submitted;
      const done = finished.get(id) ?? (await Promise.race([new Promise<BuildRecord>((resolve) => waiters.set(id, resolve)), aborted.then(() => undefined)]));
      outcome = done;
      if (done) await builds.get(id)?.chain;
    } else {
      note("dev: running; Ctrl-C to stop");
      await aborted;
    }
  } finally {
    if (!io.signal) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    await emulator.stop();
    unwatch();
    await ledger.close();
    for (const b of builds.values()) b.view?.stop();
    for (const [key, value] of savedVars) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    aws.resetClients();
    restoreEnv();
  }
  if (outcome?.status === "FAILED") throw new FailedError(`build ${outcome.buildId} failed: ${outcome.reason ?? "no reason recorded"}`);
}
