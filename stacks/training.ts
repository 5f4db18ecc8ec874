import { DEAD_LETTER_QUEUE_ENV, LINKS } from "@canopy/runtime-aws/names";
import { permissionsOf } from "./access.ts";
import { functionDefaults } from "./defaults.ts";
import { FOURTEEN_DAYS, HANDLERS } from "./handlers.ts";
import { ledgerEnvironment, VISIBILITY_FACTOR, type AppSettings } from "./settings.ts";

/** The grove queue, its dead-letter queue, the trainer that consumes it and the consumer of the dead letters. */
export function training(
  settings: AppSettings,
  { bucket, table, topic }: { bucket: sst.aws.Bucket; table: sst.aws.Dynamo; topic: sst.aws.SnsTopic },
) {
  const dlqTimeoutSeconds = 30;
  const dlq = new sst.aws.Queue(LINKS.grovesDlq, {
    visibilityTimeout: `${dlqTimeoutSeconds * VISIBILITY_FACTOR} seconds`,
    // Outlive the source queue's retention: SQS keeps a message's original enqueue time when it moves it here.
    transform: { queue: { messageRetentionSeconds: FOURTEEN_DAYS } },
  });

  const { trainer } = settings;
  const groves = new sst.aws.Queue(LINKS.groves, {
    visibilityTimeout: `${trainer.timeoutSeconds * VISIBILITY_FACTOR} seconds`,
    dlq: { queue: dlq.arn, retry: settings.groves.maxReceives },
  });

  groves.subscribe(
    {
      ...functionDefaults(),
      handler: HANDLERS.trainer,
      description: "Canopy trainer: trains one grove per task",
      // Reads the manifest and pack and writes its grove (bucket), records the landing (table); it publishes nothing.
      link: [bucket, table],
      permissions: permissionsOf("trainer", { bucket, table, dlq }),
      memory: `${trainer.memoryMb} MB`,
      timeout: `${trainer.timeoutSeconds} seconds`,
      // A task that can never succeed (an input error) goes to the dead-letter queue at once instead of being retried:
      // the trainer only sends there (a variable and its grant, not a link).
      environment: { ...ledgerEnvironment(settings), [DEAD_LETTER_QUEUE_ENV]: dlq.url },
    },
    {
      batch: { size: trainer.batchSize, partialResponses: true },
      transform: {
        eventSourceMapping: trainer.provisionedPollers
          ? {
              // Provisioned mode: pollers ready before the burst, scaling 3× faster (the README has what it costs).
              provisionedPollerConfig: {
                minimumPollers: trainer.provisionedPollers.minimum,
                maximumPollers: trainer.provisionedPollers.maximum,
              },
            }
          : { scalingConfig: { maximumConcurrency: trainer.maxConcurrency } },
      },
    },
  );

  dlq.subscribe(
    {
      ...functionDefaults(),
      handler: HANDLERS.dlq,
      description: "Canopy dead letters: gives up on a grove, fails the build past its tolerance",
      // The bucket only to quote the trainer's last recorded error in the failure reason.
      link: [bucket, table, topic],
      permissions: permissionsOf("dlq", { bucket, table, topic }),
      memory: "256 MB",
      timeout: `${dlqTimeoutSeconds} seconds`,
      environment: ledgerEnvironment(settings),
    },
    { batch: { size: 10, partialResponses: true } },
  );

  return { groves, dlq };
}
