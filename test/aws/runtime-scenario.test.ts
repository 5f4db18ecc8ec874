import { PurgeQueueCommand } from "@aws-sdk/client-sqs";
import { describeRuntimeScenario } from "@canopy/core/testing";
import { canopyEventSources, clients, createAwsRuntime, startEmulator, type ProvisionedResources, type RunningEmulator } from "@canopy/runtime-aws";
import { afterAll } from "vitest";
import { useAwsEmulator } from "./harness.ts";
import { adapters, digits, handlersOn, provision, SPEC } from "./e2e-support.ts";

useAwsEmulator();

/** The deployed functions, emulated: the real trainer, aggregator and dead-letter consumer on the resources. */
function startFunctions(resources: ProvisionedResources): RunningEmulator {
  const ports = adapters(resources);
  return startEmulator({
    ...canopyEventSources({
      queueUrl: resources.queueUrl,
      deadLetterQueueUrl: resources.deadLetterQueueUrl,
      streamArn: resources.streamArn,
      handlers: handlersOn({ trainer: ports, aggregator: ports, deadLetter: ports }),
      memoryMb: 1769,
    }),
    // A trainer and the aggregator at once at most: the harness's moto applies conditional writes atomically.
    maxConcurrency: 2,
    onError: () => {},
  });
}

// Following by polling the record (publish --wait) and by reading the table's stream (canopy dev).
for (const progress of ["poll", "stream"] as const) {
  let resources: ProvisionedResources;
  let functions: RunningEmulator | undefined;
  afterAll(async () => {
    await functions?.stop();
  });
  const open = () => {
    const runtime = createAwsRuntime({ resources, progress, pollIntervalMs: 100, streamPollIntervalMs: 100 });
    return { runtime, blobs: runtime.blobs };
  };

  describeRuntimeScenario(`the AWS runtime on moto, following by ${progress}`, {
    async open() {
      // No redelivery within the scenario: a long visibility timeout.
      resources = await provision(`-runtime-${progress}`, { visibilityTimeoutSeconds: 30 });
      functions = startFunctions(resources);
      return open();
    },
    // What loses work on AWS: the grove tasks are gone (expired, purged) while the functions are down.
    async interrupt(runtime) {
      await runtime.close();
      await functions!.stop();
      await clients.sqs().send(new PurgeQueueCommand({ QueueUrl: resources.queueUrl }));
      functions = startFunctions(resources);
      return open();
    },
    data: digits,
    spec: SPEC,
    interruptedSpec: { ...SPEC, grove_size: 1, seed: 9 },
    extension: { spec: { ...SPEC, n_estimators: 40, grove_size: 10 }, trees: 100 },
  });
}
