/**
 * The moto test harness: one `moto_server` per test file on a free loopback port, fake credentials, and the
 * resources the SST app declares (DEV_RESOURCES, shared with `canopy dev`). Call `useAwsEmulator()` at the
 * top of a test file; it starts moto before the file's tests and kills its process group after them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { delimiter } from "node:path";
import { fileURLToPath } from "node:url";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import {
  clients,
  decodeSnsDelivery,
  DEV_RESOURCES,
  provisionResources,
  resetClients,
  resourceEnv,
  type ProvisionedResources,
  type ProvisionOptions,
  type SnsDelivery,
} from "@canopy/runtime-aws";
import { afterAll, beforeAll } from "vitest";

export { DEV_RESOURCES };

export const MOTO_NOT_FOUND = "moto_server not found: pip install 'moto[server]'";

/**
 * On moto's PYTHONPATH: a sitecustomize that serialises DynamoDB requests, because moto's threaded server
 * checks a write's condition and applies it without a lock (two concurrent writers can both pass), while
 * DynamoDB applies conditional writes atomically. See moto-atomic/sitecustomize.py.
 */
const MOTO_PATCH_DIR = fileURLToPath(new URL("./moto-atomic", import.meta.url));
const MOTO_PATCH_MARKER = "canopy-moto: DynamoDB requests serialised";

export interface Moto {
  endpoint: string;
  /** How long moto took from spawn to answering HTTP. */
  startupMs: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal); // the shim, python and werkzeug's reloader, if any
  } catch {
    // already gone
  }
}

/** Spawns moto_server on a free 127.0.0.1 port (retrying on a port race) and waits until it answers. */
export async function startMoto(options: { command?: string; timeoutMs?: number } = {}): Promise<Moto> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await spawnMoto(options.command ?? "moto_server", await freePort(), options.timeoutMs ?? 30_000);
    } catch (err) {
      if ((err as Error).message === MOTO_NOT_FOUND || (err as Error).message.startsWith("moto_server started without")) throw err;
      lastError = err as Error;
    }
  }
  throw lastError!;
}

async function spawnMoto(command: string, port: number, timeoutMs: number): Promise<Moto> {
  const started = performance.now();
  const pythonPath = [MOTO_PATCH_DIR, process.env.PYTHONPATH].filter(Boolean).join(delimiter);
  const child = spawn(command, ["-H", "127.0.0.1", "-p", String(port)], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, PYTHONPATH: pythonPath },
  });
  let stderr = "";
  let patched = false;
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
    patched ||= stderr.includes(MOTO_PATCH_MARKER);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "ENOENT" ? new Error(MOTO_NOT_FOUND) : err));
    void exited.then(() => reject(new Error(`moto_server exited before answering on port ${port}: ${stderr.trim().split("\n").pop() ?? ""}`)));
  });
  failed.catch(() => {}); // observed below; avoid an unhandled rejection once stop() ends the process
  const onExit = () => killGroup(child, "SIGKILL");
  process.once("exit", onExit);

  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  let gaveUp = false;
  const ready = (async () => {
    while (Date.now() < deadline && !gaveUp) {
      try {
        if ((await fetch(`${endpoint}/moto-api/`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
  })();
  try {
    await Promise.race([ready, failed]);
    // The patch prints before the server listens; give the pipe a moment to deliver it.
    for (let i = 0; i < 100 && !patched; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!patched) throw new Error(`moto_server started without ${MOTO_PATCH_DIR}/sitecustomize.py (is PYTHONPATH ignored?)`);
  } catch (err) {
    gaveUp = true;
    ready.catch(() => {});
    killGroup(child, "SIGKILL");
    process.off("exit", onExit);
    throw err;
  }
  const startupMs = performance.now() - started;

  return {
    endpoint,
    startupMs,
    async stop() {
      process.off("exit", onExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup(child, "SIGTERM");
      const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Variables the SDK reads: the endpoint, fake credentials, a region. */
const EMULATOR_ENV = (endpoint: string): Record<string, string | undefined> => ({
  AWS_ENDPOINT_URL: endpoint,
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_REGION: "us-east-1",
  // Node 20 is still supported; the SDK's warning about 2027 is noise in test output.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
});

export interface AwsEmulator {
  moto: Moto;
  resources: ProvisionedResources;
  stop(): Promise<void>;
}

/**
 * Starts moto, points this process's AWS SDK at it (environment + fresh shared clients) and provisions the
 * resources. The CANOPY_* variables are set too, so `resolveResources` finds them.
 */
export async function startAwsEmulator(options: ProvisionOptions = {}): Promise<AwsEmulator> {
  const moto = await startMoto();
  const env = { ...EMULATOR_ENV(moto.endpoint) };
  const saved: Record<string, string | undefined> = {};
  const set = (vars: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(vars)) {
      if (!(key in saved)) saved[key] = process.env[key];
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  set(env);
  resetClients();
  try {
    const resources = await provisionResources(options);
    set(resourceEnv(resources));
    return {
      moto,
      resources,
      async stop() {
        resetClients();
        set(saved);
        await moto.stop();
      },
    };
  } catch (err) {
    resetClients();
    set(saved);
    await moto.stop();
    throw err;
  }
}

/** A table shaped like the builds table (partition key buildId), without a stream. */
export async function createBuildsTable(name: string): Promise<void> {
  const { CreateTableCommand } = await import("@aws-sdk/client-dynamodb");
  const key = DEV_RESOURCES.table.partitionKey;
  const index = DEV_RESOURCES.table.openBuildsIndex;
  await clients.dynamodb().send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: key, AttributeType: "S" },
        { AttributeName: index.hashKey, AttributeType: "S" },
        { AttributeName: index.rangeKey, AttributeType: "N" },
      ],
      KeySchema: [{ AttributeName: key, KeyType: "HASH" }],
      // The sweeper's open-builds index, as the app declares it.
      GlobalSecondaryIndexes: [
        {
          IndexName: index.name,
          KeySchema: [
            { AttributeName: index.hashKey, KeyType: "HASH" },
            { AttributeName: index.rangeKey, KeyType: "RANGE" },
          ],
          Projection: { ProjectionType: "KEYS_ONLY" },
        },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
}

/** Registers beforeAll/afterAll for one emulator per test file; read `.current` inside tests. */
export function useAwsEmulator(options: ProvisionOptions = {}): { readonly current: AwsEmulator } {
  let emulator: AwsEmulator | undefined;
  beforeAll(async () => {
    emulator = await startAwsEmulator(options);
  });
  afterAll(async () => {
    await emulator?.stop();
  });
  return {
    get current() {
      if (!emulator) throw new Error("the AWS emulator is not running (use it inside a test)");
      return emulator;
    },
  };
}

/** Receives (and deletes) up to `max` messages, long-polling until `count` have arrived or the time is up. */
export async function receiveMessages(
  queueUrl: string,
  options: { count: number; timeoutMs?: number; sqs?: SQSClient },
): Promise<{ body: string; attributes: Record<string, string> }[]> {
  const sqs = options.sqs ?? clients.sqs();
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  const out: { body: string; attributes: Record<string, string> }[] = [];
  while (out.length < options.count && Date.now() < deadline) {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"] }),
    );
    const messages = got.Messages ?? [];
    if (messages.length === 0) continue;
    for (const m of messages)
      out.push({ body: m.Body ?? "", attributes: Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ""])) });
    await sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
  }
  return out;
}

/** Notifications that reached the inbox queue, unwrapped from their SNS envelopes. */
export async function receiveNotifications(
  inboxUrl: string,
  options: { count: number; timeoutMs?: number },
): Promise<SnsDelivery[]> {
  return (await receiveMessages(inboxUrl, options)).map((m) => decodeSnsDelivery(m.body));
}
