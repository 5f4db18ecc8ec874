import type { Command } from "commander";
// The light names module: defining the commands must not load the AWS SDK.
import { RESOURCE_ENV, RESOURCE_LINKS, type AwsResources, type ResourceName } from "@canopy/runtime-aws/names";
import { parseHttpUrl } from "./args.ts";
import { FailedError, UsageError } from "./errors.ts";

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
    command.option(option, `${what} (default: $${RESOURCE_ENV[name]}, else the SST link ${RESOURCE_LINKS[name].link})`);
  }
  return command;
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

/** A connection refused by the emulator as one line naming it; any other error unchanged. */
export function unreachable(endpoint: string, err: unknown): Error {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  const code = e.code ?? e.cause?.code;
  if (code === "ECONNREFUSED" || code === "ENOTFOUND" || code === "ECONNRESET")
    return new FailedError(`cannot reach the emulator at ${endpoint} (${code}); start LocalStack or moto_server first`);
  return err as Error;
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
        else missing.push(`${name} (${FLAGS[name].option.split(" ")[0]}, $${RESOURCE_ENV[name]} or the SST link ${RESOURCE_LINKS[name].link})`);
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
