import {
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
  type BatchResultErrorEntry,
  type SendMessageBatchCommandOutput,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import { encodeGroveTask, type GroveTask, type TaskQueue } from "@canopy/core";
import { clients } from "./clients.ts";
import { AwsBusyError, AwsInternalError } from "./errors.ts";

/** The one SQS call the queue makes; SQSClient satisfies it, and so can a test double. */
export interface SqsSender {
  send(command: SendMessageBatchCommand): Promise<SendMessageBatchCommandOutput>;
}

export interface SqsTaskQueueOptions {
  /** Attempts per batch for entries SQS reports as failed (not sender faults). Default 5. */
  maxAttempts?: number;
  /** First backoff; doubles per attempt, with full jitter. Default 100 ms. */
  baseDelayMs?: number;
  /** Batches in flight at once. Default 4. */
  concurrency?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** SQS's limit on entries per SendMessageBatch. */
export const SQS_BATCH_SIZE = 10;

const describe = (e: BatchResultErrorEntry) => `${e.Code ?? "error"}${e.Message ? `: ${e.Message}` : ""}`;

/**
 * Grove tasks on an SQS standard queue, one message each (body: core's encodeGroveTask), sent with
 * SendMessageBatch in chunks of 10. A batch call can succeed while some entries fail: only those are sent
 * again, with backoff; entries SQS blames on the sender (too large, invalid) fail at once. Whole-call
 * errors (throttling, network) are retried by the SDK itself.
 */
export class SqsTaskQueue implements TaskQueue {
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly concurrency: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly queueUrl: string,
    private readonly client: SqsSender = clients.sqs(),
    options: SqsTaskQueueOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.concurrency = options.concurrency ?? 4;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async send(tasks: GroveTask[]): Promise<void> {
    const chunks: SendMessageBatchRequestEntry[][] = [];
    for (let i = 0; i < tasks.length; i += SQS_BATCH_SIZE)
      chunks.push(
        tasks.slice(i, i + SQS_BATCH_SIZE).map((task, j) => ({
          Id: `t${i + j}`, // unique within the batch even if a grove repeats
          MessageBody: encodeGroveTask(task),
          MessageAttributes: {
            buildId: { DataType: "String", StringValue: task.buildId },
            grove: { DataType: "Number", StringValue: String(task.grove) },
          },
        })),
      );
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) await this.sendBatch(chunks[next++]);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
  }

  private async sendBatch(entries: SendMessageBatchRequestEntry[]): Promise<void> {
    let pending = entries;
    for (let attempt = 1; ; attempt++) {
      const out = await this.client.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: pending }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const fatal = failed.find((f) => f.SenderFault);
      if (fatal) throw new AwsInternalError(`SQS rejected grove task ${fatal.Id}: ${describe(fatal)}`);
      if (attempt >= this.maxAttempts)
        throw new AwsBusyError(`SQS did not accept ${failed.length} grove task(s) after ${attempt} attempts: ${describe(failed[0])}`);
      const ids = new Set(failed.map((f) => f.Id));
      pending = pending.filter((e) => ids.has(e.Id));
      await this.sleep(Math.random() * this.baseDelayMs * 2 ** (attempt - 1));
    }
  }
}

/**
 * Whether the grove queue holds any task: visible, in flight (received, not yet deleted) or delayed. SQS's counts are
 * approximate (they lag by up to a minute), which suits the sweeper: it only needs to know whether trainers still
 * have work that could be some stalled-looking build's.
 */
export async function queueState(queueUrl: string, client: SQSClient = clients.sqs()): Promise<{ busy: boolean; messages: number }> {
  const out = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    }),
  );
  const a = out.Attributes ?? {};
  const messages = Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
  return { busy: messages > 0, messages };
}

/**
 * The grove dead-letter queue, written to by the trainer: a task whose grove can never succeed (an input error) is
 * sent there at once, as SQS's redrive would after the last receive, and its consumer gives the grove up (quoting
 * the error the trainer saved). `cause` goes along as a message attribute for whoever inspects the queue.
 */
export class SqsDeadLetters {
  constructor(
    readonly queueUrl: string,
    private readonly client: SQSClient = clients.sqs(),
  ) {}

  async send(body: string, cause: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: body,
        MessageAttributes: { cause: { DataType: "String", StringValue: cause.slice(0, 1000) } },
      }),
    );
  }
}
