import type { Command } from "commander";
import { addAwsOptions, type AwsTargetOptions } from "../aws-target.ts";
import { UsageError } from "../errors.ts";
import { addFilterOptions, type FilterOptions } from "../notify-filter.ts";

export interface SubscribeOptions extends AwsTargetOptions, FilterOptions {
  email?: string;
  https?: string;
  sqs?: string;
  json?: boolean;
}

export function addSubscribeCommand(canopy: Command): Command {
  const command = canopy
    .command("subscribe")
    .summary("subscribe an email address, a URL or an SQS queue to build notifications")
    .description(
      "Subscribe to the app's notification topic: one message per build when it completes or fails (the JSON in " +
        "schemas/notification.v1.json). --build, --status and --tag narrow it with an SNS filter policy: on the message " +
        "attributes buildId and status, or, when --tag is given, on the message body (FilterPolicyScope MessageBody), since " +
        "tags travel as one JSON attribute. For --sqs the queue's policy gets a statement letting the topic send to it. " +
        "Prints the subscription ARN (remove it with aws sns unsubscribe --subscription-arn <arn>).",
    )
    .option("--email <address>", "send each notification to this address (SNS emails a confirmation link first)")
    .option("--https <url>", "POST each notification to this URL (SNS first POSTs a SubscriptionConfirmation to confirm)")
    .option("--sqs <arn>", "deliver each notification to this SQS queue, in SNS's envelope (raw delivery off)");
  addFilterOptions(command).option("--json", "print the subscription as JSON");
  addAwsOptions(command, ["topicArn"]);
  return command.action(async (options: SubscribeOptions) => {
    await subscribe(options);
  });
}

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** The SNS protocol and endpoint for the one target given. */
function target(o: SubscribeOptions): { protocol: "email" | "http" | "https" | "sqs"; endpoint: string } {
  const given = [o.email !== undefined && "--email", o.https !== undefined && "--https", o.sqs !== undefined && "--sqs"].filter(Boolean);
  if (given.length === 0) throw new UsageError("say where to deliver: --email <address>, --https <url> or --sqs <arn>");
  if (given.length > 1) throw new UsageError(`one subscription at a time: ${given.join(" and ")} given`);
  if (o.email !== undefined) {
    if (!EMAIL.test(o.email)) throw new UsageError(`--email ${JSON.stringify(o.email)}: not an email address`);
    return { protocol: "email", endpoint: o.email };
  }
  if (o.https !== undefined) {
    let url: URL;
    try {
      url = new URL(o.https);
    } catch {
      throw new UsageError(`--https ${JSON.stringify(o.https)}: not a URL`);
    }
    // SNS also delivers over plain http (an emulator, a private endpoint); say so rather than refuse.
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new UsageError(`--https ${o.https}: expected an https:// (or http://) URL`);
    return { protocol: url.protocol === "https:" ? "https" : "http", endpoint: url.href };
  }
  return { protocol: "sqs", endpoint: o.sqs! };
}

export async function subscribe(options: SubscribeOptions, io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream } = {}): Promise<void> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const { filterPolicy, parseSqsArn, snsSendStatement, withStatement } = await import("../notify-filter.ts");
  const to = target(options);
  const queue = to.protocol === "sqs" ? parseSqsArn(to.endpoint) : undefined;
  if (to.protocol === "sqs" && !queue) throw new UsageError(`--sqs ${JSON.stringify(to.endpoint)}: expected a queue ARN, arn:aws:sqs:<region>:<account>:<name>`);
  const filter = filterPolicy(options);

  const { connectAws } = await import("../aws-target.ts");
  const aws = await connectAws(options, ["topicArn"]);
  const { topicArn } = aws.resources;
  try {
    if (queue) {
      // Without this statement SNS's deliveries are refused by the queue (an emulator may not check).
      const sqsSdk = await import("@aws-sdk/client-sqs");
      const { clients } = await import("@canopy/runtime-aws");
      const sqs = clients.sqs();
      const region = await sqs.config.region();
      const client = region === queue.region ? sqs : new sqsSdk.SQSClient({ region: queue.region });
      try {
        let queueUrl: string;
        try {
          queueUrl = (await client.send(new sqsSdk.GetQueueUrlCommand({ QueueName: queue.name, QueueOwnerAWSAccountId: queue.account }))).QueueUrl!;
        } catch (err) {
          const name = (err as { name?: string }).name;
          if (name === "QueueDoesNotExist" || name === "AWS.SimpleQueueService.NonExistentQueue") throw new UsageError(`--sqs ${to.endpoint}: no such queue`);
          throw err;
        }
        const statement = snsSendStatement(to.endpoint, topicArn);
        try {
          const current = await client.send(new sqsSdk.GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["Policy"] }));
          const policy = withStatement(current.Attributes?.Policy, statement);
          if (policy === undefined) note(`queue ${queue.name} already lets the topic send to it`);
          else {
            await client.send(new sqsSdk.SetQueueAttributesCommand({ QueueUrl: queueUrl, Attributes: { Policy: policy } }));
            note(`queue ${queue.name}: added a policy statement letting ${topicArn} send to it`);
          }
        } catch (err) {
          const name = (err as { name?: string }).name ?? "";
          if (!/AccessDenied/i.test(name)) throw err;
          note(`warning: cannot change the policy of ${queue.name} (${name}); add this statement to it or SNS cannot deliver: ${JSON.stringify(statement)}`);
        }
      } finally {
        if (client !== sqs) client.destroy();
      }
    }

    const { SubscribeCommand } = await import("@aws-sdk/client-sns");
    const { clients } = await import("@canopy/runtime-aws");
    const attributes: Record<string, string> = filter ? { FilterPolicy: JSON.stringify(filter.policy), FilterPolicyScope: filter.scope } : {};
    const result = await clients.sns().send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: to.protocol,
        Endpoint: to.endpoint,
        ReturnSubscriptionArn: true,
        ...(filter ? { Attributes: attributes } : {}),
      }),
    );
    const arn = result.SubscriptionArn ?? "";
    if (filter) note(`filter policy on the message ${filter.scope === "MessageBody" ? "body" : "attributes"}: ${JSON.stringify(filter.policy)}`);
    else note("no filter: every build's notification");
    if (to.protocol === "email") note(`SNS emailed a confirmation link to ${to.endpoint}; notifications start once it is followed`);
    if (to.protocol === "http" || to.protocol === "https")
      note(`SNS POSTs a SubscriptionConfirmation to ${to.endpoint} first; notifications start once the endpoint visits its SubscribeURL`);
    if (options.json) {
      stdout.write(
        `${JSON.stringify({ subscriptionArn: arn, topicArn, protocol: to.protocol, endpoint: to.endpoint, filterPolicy: filter?.policy ?? null, filterPolicyScope: filter?.scope ?? null })}\n`,
      );
    } else stdout.write(`${arn}\n`);
  } catch (err) {
    throw aws.explain(err);
  } finally {
    aws.close();
  }
}
