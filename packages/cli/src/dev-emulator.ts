import { emulatorEnv, unreachable } from "./aws-target.ts";

export interface DevEmulatorOptions {
  endpoint: string;
  suffix?: string;
  concurrency?: number;
  memory?: number;
  visibilityTimeout?: number;
  maxReceiveCount?: number;
  verbose?: boolean;
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
  const { errorLine } = await import("@canopy/core");

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
      if (i.error) note(`warning: ${i.functionName} threw: ${errorLine(i.error)}`);
      else if (i.failed > 0) note(`warning: ${i.functionName}: ${i.failed} of ${i.records} record(s) failed; SQS will retry them`);
    },
    onError: (err) => note(`warning: ${errorLine(err)}`),
  });

  return {
    resources,
    async stop() {
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
