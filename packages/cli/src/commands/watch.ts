import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { FailedError } from "../errors.ts";
import { addFilterOptions, type FilterOptions } from "../notify-filter.ts";

export interface WatchOptions extends AwsTargetOptions, FilterOptions {
  json?: boolean;
}

export function addWatchCommand(canopy: Command): Command {
  const command = canopy
    .command("watch")
    .summary("print build notifications as they arrive")
    .description(
      "Print the app's build notifications as they arrive: one line each (build, outcome, metrics or reason, time, " +
        "cost, tags), or with --json the notification itself (schemas/notification.v1.json), one per line. Creates a " +
        "temporary SQS queue (canopy-watch-<random>) with the policy SNS needs to send to it, subscribes it to the topic " +
        "(filtered like canopy subscribe), and removes both when it stops: Ctrl-C, SIGTERM or SIGHUP.",
    );
  addFilterOptions(command).option("--json", "print each notification as one JSON line");
  addAwsOptions(command, ["topicArn"]);
  return command.action(async (options: WatchOptions) => {
    await watch(options);
  });
}

export interface WatchIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Stops watching (default: SIGINT, SIGTERM, SIGHUP). */
  signal?: AbortSignal;
}

const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
/** A leftover queue (the process was killed) drops its messages after an hour; the name says what it was. */
const RETENTION_SECONDS = 3600;

export async function watch(options: WatchOptions, io: WatchIo = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const { filterPolicy, notificationLine, snsSendStatement } = await import("../notify-filter.ts");
  const filter = filterPolicy(options);

  // Signals are taken from the start: a Ctrl-C during setup still removes whatever was created.
  const stop = new AbortController();
  let cleaning: string | undefined;
  const onSignal = () => {
    if (stop.signal.aborted) {
      // A second Ctrl-C: leave at once, saying what may be left behind.
      stderr.write(`canopy: interrupted again; ${cleaning ?? "nothing"} may be left: remove it by hand\n`);
      process.exit(130);
    }
    stop.abort();
  };
  if (io.signal) io.signal.addEventListener("abort", () => stop.abort(), { once: true });
  else for (const s of STOP_SIGNALS) process.on(s, onSignal);

  const { connectAws } = await import("../aws-target.ts");
  let aws: Awaited<ReturnType<typeof connectAws<"topicArn">>>;
  try {
    aws = await connectAws(options, ["topicArn"]);
  } catch (err) {
    if (!io.signal) for (const s of STOP_SIGNALS) process.off(s, onSignal);
    throw err;
  }
  const { topicArn } = aws.resources;
  const sqsSdk = await import("@aws-sdk/client-sqs");
  const snsSdk = await import("@aws-sdk/client-sns");
  const runtime = await import("@canopy/runtime-aws");
  const sqs = runtime.clients.sqs();
  const sns = runtime.clients.sns();

  const name = `canopy-watch-${randomBytes(4).toString("hex")}`;
  let queueUrl: string | undefined;
  let subscriptionArn: string | undefined;
  let failure: unknown;
  try {
    // The queue is created with its policy, so SNS may send from the first message (a policy set later can take
    // up to a minute to apply on AWS). Its ARN is derived from the topic's partition and account and the region.
    const [, partition, , , account] = topicArn.split(":");
    const region = await sqs.config.region();
    const expectedArn = `arn:${partition}:sqs:${region}:${account}:${name}`;
    const policyFor = (arn: string) =>
      JSON.stringify({ Version: "2012-10-17", Statement: [snsSendStatement(arn, topicArn)] });
    cleaning = `the queue ${name}`;
    queueUrl = (
      await sqs.send(
        new sqsSdk.CreateQueueCommand({
          QueueName: name,
          Attributes: { Policy: policyFor(expectedArn), MessageRetentionPeriod: String(RETENTION_SECONDS) },
        }),
      )
    ).QueueUrl!;
    const queueArn = (await sqs.send(new sqsSdk.GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }))).Attributes?.QueueArn ?? expectedArn;
    if (queueArn !== expectedArn) await sqs.send(new sqsSdk.SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { Policy: policyFor(queueArn) } }));

    cleaning = `the queue ${name} and its subscription to ${topicArn}`;
    subscriptionArn = (
      await sns.send(
        new snsSdk.SubscribeCommand({
          TopicArn: topicArn,
          Protocol: "sqs",
          Endpoint: queueArn,
          ReturnSubscriptionArn: true,
          ...(filter ? { Attributes: { FilterPolicy: JSON.stringify(filter.policy), FilterPolicyScope: filter.scope } } : {}),
        }),
      )
    ).SubscriptionArn;

    const filtered = filter ? ` (filter on the message ${filter.scope === "MessageBody" ? "body" : "attributes"}: ${JSON.stringify(filter.policy)})` : "";
    if (!stop.signal.aborted) note(`watching ${topicArn} through the temporary queue ${name}${filtered}; Ctrl-C to stop`);

    const seen = new Set<string>(); // SNS and SQS deliver at least once
    while (!stop.signal.aborted) {
      let messages: import("@aws-sdk/client-sqs").Message[];
      try {
        const got = await sqs.send(new sqsSdk.ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 20 }), {
          abortSignal: stop.signal,
        });
        messages = got.Messages ?? [];
      } catch (err) {
        if (stop.signal.aborted) break;
        throw err;
      }
      for (const m of messages) {
        try {
          const delivery = runtime.decodeSnsDelivery(m.Body ?? "");
          if (!seen.has(delivery.messageId)) {
            seen.add(delivery.messageId);
            stdout.write(`${options.json ? JSON.stringify(delivery.notification) : notificationLine(delivery.notification)}\n`);
          }
        } catch (err) {
          note(`warning: skipped a message that is not a build notification: ${(err as Error).message}`);
        }
      }
      if (messages.length > 0)
        await sqs.send(new sqsSdk.DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  } catch (err) {
    failure = aws.explain(err);
  } finally {
    const left: string[] = [];
    if (subscriptionArn && subscriptionArn !== "pending confirmation") {
      try {
        await sns.send(new snsSdk.UnsubscribeCommand({ SubscriptionArn: subscriptionArn }));
      } catch (err) {
        left.push(`subscription ${subscriptionArn} (${(err as Error).name})`);
      }
    }
    if (queueUrl) {
      try {
        await sqs.send(new sqsSdk.DeleteQueueCommand({ QueueUrl: queueUrl }));
      } catch (err) {
        left.push(`queue ${queueUrl} (${(err as Error).name})`);
      }
    }
    if (!io.signal) for (const s of STOP_SIGNALS) process.off(s, onSignal);
    aws.close();
    if (left.length > 0 && failure === undefined) failure = new FailedError(`could not remove ${left.join(" and ")}; remove it by hand`);
    else if (left.length > 0) note(`warning: could not remove ${left.join(" and ")}; remove it by hand`);
    else if (queueUrl) note(`removed the queue ${name}${subscriptionArn ? " and its subscription" : ""}`);
  }
  if (failure !== undefined) throw failure;
}
