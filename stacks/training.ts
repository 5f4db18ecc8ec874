import { DEAD_LETTER_QUEUE_ENV, LINKS } from "@canopy/runtime-aws/names";
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
      memory: `${trainer.memoryMb} MB`,
      timeout: `${trainer.timeoutSeconds} seconds`,
      // A task that can never succeed (an input error) goes to the dead-letter queue at once instead of being retried:
      // the trainer only sends there (a variable and one permission, not a link).
      environment: { ...ledgerEnvironment(settings), [DEAD_LETTER_QUEUE_ENV]: dlq.url },
      permissions: [{ actions: ["sqs:SendMessage"], resources: [dlq.arn] }],
    },
    {
      batch: { size: trainer.batchSize, partialResponses: true },
      transform: { eventSourceMapping: { scalingConfig: { maximumConcurrency: trainer.maxConcurrency } } },
    },
  );

  dlq.subscribe(
    {
      ...functionDefaults(),
      handler: HANDLERS.dlq,
      description: "Canopy dead letters: gives up on a grove, fails the build past its tolerance",
      // The bucket only to quote the trainer's last recorded error in the failure reason.
      link: [bucket, table, topic],
      memory: "256 MB",
      timeout: `${dlqTimeoutSeconds} seconds`,
      environment: ledgerEnvironment(settings),
    },
    { batch: { size: 10, partialResponses: true } },
  );

  return { groves, dlq };
}
