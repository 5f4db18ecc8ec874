import { emulatorEnv, unreachable } from "./aws-target.ts";

export interface DevEmulatorOptions {
  endpoint: string;
  suffix?: string;
  concurrency?: number;
  memory?: number;
  visibilityTimeout?: number;
  maxReceiveCount?: number;
  verbose?: boolean;
  /** How often the sweeper runs, as the deployed app's schedule would (default every 60 s). */
  sweepIntervalMs?: number;
}

export interface DevEmulator {
  resources: import("@canopy/runtime-aws").ProvisionedResources;
  /** Stops the handlers and puts the environment (endpoint, CANOPY_* variables) back. */
  stop(): Promise<void>;
}

/**
 * `canopy dev`'s half that is not following builds: points the SDK at the emulator, creates the app's resources
 * there (DEV_RESOURCES, idempotent), sets the CANOPY_* variables that find them, and runs the Lambda handlers on
 * them under runtime-aws's event-source-mapping emulator, as the deployed app would. Problems in the handlers are
 * `note`d as warnings. The SDK, the handlers and the engine load only here.
 */
export async function startDevEmulator(options: DevEmulatorOptions, note: (text: string) => void): Promise<DevEmulator> {
  const endpoint = options.endpoint.replace(/\/$/, "");
  const restoreEnv = emulatorEnv(endpoint);
  const aws = await import("@canopy/runtime-aws");
  const functions = await import("@canopy/functions");
  const { errorLine, sweepBuilds } = await import("@canopy/core");
  const { aggregationLeaseMs, stallLimitMs } = await import("@canopy/runtime-aws/settings");

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
  // The handlers get this emulator's resources directly (not through the CANOPY_* variables, which a process that runs
  // canopy dev twice, as tests do, would have resolved once for good).
  const ports = {
    blobs: new aws.S3BlobStore(resources.bucket),
    ledger: new aws.DynamoLedger(resources.table),
    notifier: new aws.SnsNotifier(resources.topicArn),
  };
  // The sweeper, as the deployed app schedules it. The first sweep, before the handlers start, recovers what a previous
  // canopy dev left: its aggregators died with it (a claim of any age is dead: lease 0, and none of this process can
  // exist yet) and a trigger it had not handled is lost (no grace); tasks it left on the queue are still there, so
  // groves outstanding wait for the trainers as usual.
  const sweepPorts = {
    ...ports,
    queue: new aws.SqsTaskQueue(resources.queueUrl),
    queueState: () => aws.queueState(resources.queueUrl),
  };
  const sweep = async (policy: Parameters<typeof sweepBuilds>[1], what: string) => {
    try {
      for (const r of await sweepBuilds(await aws.listOpenBuilds(resources.table), policy, sweepPorts)) {
        if (r.error) note(`warning: ${what}: build ${r.buildId} could not be swept: ${r.error}`);
        else if (r.action !== "none" && !r.skipped) note(`dev: ${what}: build ${r.buildId}: ${r.action}: ${r.detail}`);
      }
    } catch (err) {
      note(`warning: ${what} failed: ${errorLine(err)}`);
    }
  };
  // The aggregator's stream mapping reads from before the recovery's writes (and the usual 5 s of slack).
  const since = Date.now() - 5000;
  await sweep({ stallMs: Number.POSITIVE_INFINITY, leaseMs: 0, triggerGraceMs: 0 }, "recovery");
  const emulator = aws.startEmulator({
    ...aws.canopyEventSources({
      queueUrl: resources.queueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      streamArn: resources.streamArn,
      memoryMb: options.memory ?? 1769,
      // As many trainer batches in flight as invocations may run (the limit itself is global).
      trainerPollers: options.concurrency ?? 1,
      since,
      handlers: {
        trainer: functions.createTrainer({
          ports: async () => ports,
          deadLetters: async () => new aws.SqsDeadLetters(resources.deadLetterQueueUrl),
          logger: logger("trainer"),
        }),
        // With the grove queue, as deployed: a study's aggregation queues its final build and halving rounds.
        aggregator: functions.createAggregator({ ports: async () => ({ ...ports, queue: sweepPorts.queue }), logger: logger("aggregator") }),
        deadLetter: functions.createDeadLetterConsumer({ ports: async () => ports, logger: logger("dlq") }),
      },
    }),
    ...(options.concurrency !== undefined ? { maxConcurrency: options.concurrency } : {}),
    onInvocation: (i) => {
      if (i.error) note(`warning: ${i.functionName} threw: ${errorLine(i.error)}`);
      else if (i.failed > 0) note(`warning: ${i.functionName}: ${i.failed} of ${i.records} record(s) failed; SQS will retry them`);
    },
    onError: (err) => note(`warning: ${errorLine(err)}`),
  });

  const sweeper = setInterval(() => void sweep({ stallMs: stallLimitMs(), leaseMs: aggregationLeaseMs() }, "sweeper"), options.sweepIntervalMs ?? 60_000);
  sweeper.unref();

  return {
    resources,
    async stop() {
      clearInterval(sweeper);
      await emulator.stop();
      for (const [key, value] of savedVars) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      aws.resetClients();
      restoreEnv();
    },
  };
}
