import type { Command } from "commander";
import type { AwsResources, ResourceName } from "@canopy/runtime-aws";
import { parseHttpUrl } from "./args.ts";
import { emulatorEnv, unreachable } from "./commands/dev.ts";
import { UsageError } from "./errors.ts";

/** The flags shared by publish, status, subscribe and watch: where AWS is and which resources to use. */
export interface AwsTargetOptions {
  endpoint?: string;
  bucket?: string;
  table?: string;
  queue?: string;
  topic?: string;
}

const FLAGS: Record<ResourceName, { option: string; key: keyof AwsTargetOptions; what: string }> = {
  bucket: { option: "--bucket <name>", key: "bucket", what: "the artifact bucket" },
  table: { option: "--table <name>", key: "table", what: "the builds table" },
  queueUrl: { option: "--queue <url>", key: "queue", what: "the grove queue's URL" },
  topicArn: { option: "--topic <arn>", key: "topic", what: "the notification topic's ARN" },
};

/** Adds --endpoint and one flag per resource the command uses. */
export function addAwsOptions(command: Command, names: readonly ResourceName[]): Command {
  command.option(
    "--endpoint <url>",
    "an AWS emulator (moto, LocalStack); resources not named otherwise default to those canopy dev creates there",
    parseHttpUrl,
  );
  for (const name of names) {
    const { option, what } = FLAGS[name];
    command.option(option, `${what} (default: $${envName(name)}, else the SST link ${linkName(name)})`);
  }
  return command;
}

// Spelled out here so defining the commands does not load the AWS SDK; runtime-aws's RESOURCE_ENV /
// RESOURCE_LINKS are the source (checked by the e2e test, which resolves through them).
function envName(name: ResourceName): string {
  return { bucket: "CANOPY_BUCKET", table: "CANOPY_TABLE", queueUrl: "CANOPY_QUEUE_URL", topicArn: "CANOPY_TOPIC_ARN" }[name];
}
function linkName(name: ResourceName): string {
  return { bucket: "CanopyBucket", table: "CanopyBuilds", queueUrl: "CanopyGroves", topicArn: "CanopyNotifications" }[name];
}

export interface AwsTarget<K extends ResourceName> {
  resources: Pick<AwsResources, K>;
  /** The emulator endpoint, when one was given. */
  endpoint?: string;
  /** Connection errors as one line naming the emulator (other errors unchanged). */
  explain(err: unknown): unknown;
  /** Drops the SDK clients (their sockets) and puts the environment back. */
  close(): void;
}

/**
 * Points the SDK at the emulator (with --endpoint) and resolves the resources: the flag, else the CANOPY_*
 * variable, else the SST link (`npx sst shell -- ...`), else, with --endpoint, what `canopy dev` provisions there.
 */
export async function connectAws<K extends ResourceName>(options: AwsTargetOptions, names: readonly K[]): Promise<AwsTarget<K>> {
  const endpoint = options.endpoint?.replace(/\/$/, "");
  const restoreEnv = endpoint ? emulatorEnv(endpoint) : () => {};
  const aws = await import("@canopy/runtime-aws");
  aws.resetClients();
  const close = () => {
    aws.resetClients();
    restoreEnv();
  };
  const explain = (err: unknown) => (endpoint ? unreachable(endpoint, err) : err);
  try {
    const resources: Partial<AwsResources> = {};
    const missing: string[] = [];
    for (const name of names) {
      const flag = options[FLAGS[name].key];
      if (flag) {
        resources[name] = flag;
        continue;
      }
      try {
        resources[name] = (await aws.resolveResources([name]))[name];
      } catch {
        if (endpoint) resources[name] = await devResource(aws, name);
        else missing.push(`${name} (${FLAGS[name].option.split(" ")[0]}, $${aws.RESOURCE_ENV[name]} or the SST link ${aws.RESOURCE_LINKS[name].link})`);
      }
    }
    if (missing.length > 0)
      throw new UsageError(`AWS resources not configured: ${missing.join(", ")}; run under \`npx sst shell --stage <name> --\`, or use --endpoint with canopy dev`);
    return { resources: resources as Pick<AwsResources, K>, ...(endpoint ? { endpoint } : {}), explain, close };
  } catch (err) {
    close();
    throw explain(err);
  }
}

/** What `canopy dev` (no --suffix) provisions on the emulator, looked up by name. */
async function devResource(aws: typeof import("@canopy/runtime-aws"), name: ResourceName): Promise<string> {
  const R = aws.DEV_RESOURCES;
  if (name === "bucket") return R.bucket.name;
  if (name === "table") return R.table.name;
  if (name === "queueUrl") {
    const { GetQueueUrlCommand } = await import("@aws-sdk/client-sqs");
    try {
      return (await aws.clients.sqs().send(new GetQueueUrlCommand({ QueueName: R.queue.name }))).QueueUrl!;
    } catch (err) {
      if ((err as { name?: string }).name === "QueueDoesNotExist" || (err as { name?: string }).name === "AWS.SimpleQueueService.NonExistentQueue")
        throw new UsageError(`no queue ${R.queue.name} on the emulator: start \`canopy dev --endpoint <url>\` first, or pass --queue`);
      throw err;
    }
  }
  const { ListTopicsCommand } = await import("@aws-sdk/client-sns");
  let next: string | undefined;
  do {
    const page = await aws.clients.sns().send(new ListTopicsCommand({ ...(next ? { NextToken: next } : {}) }));
    const found = page.Topics?.find((t) => t.TopicArn?.endsWith(`:${R.topic.name}`));
    if (found?.TopicArn) return found.TopicArn;
    next = page.NextToken;
  } while (next);
  throw new UsageError(`no topic ${R.topic.name} on the emulator: start \`canopy dev --endpoint <url>\` first, or pass --topic`);
}
