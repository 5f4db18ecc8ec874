/**
 * Runs a built function the way Lambda would — from a copy of its bundle directory outside any node_modules
 * tree (Lambda's /var/task has none), with only the environment the app gives it — against an endpoint on
 * 127.0.0.1 that records every request and either refuses it or passes it on to an emulator (moto). What a handler
 * asks AWS for shows whether it found its resource names through SST's links (resource.enc + SST_KEY), which
 * resources it reaches, and which IAM actions it needs (`iamRequest`, checked against its role with `allows`).
 */
import { execFileSync, spawn } from "node:child_process";
import { encodeGroveTask, type BuildSummary, type GroveTask } from "@canopy/core";
import { summaryToItem } from "@canopy/runtime-aws";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

export interface ProbeRequest {
  service: "dynamodb" | "s3" | "sns" | "sqs" | "other";
  operation: string;
  /** Table name, bucket, topic ARN or queue URL. */
  resource: string;
  /** S3 object requests: the key. */
  key?: string;
  /** DynamoDB: the index a Query or Scan reads. */
  index?: string;
  /** DynamoDB TransactWriteItems: each item's own action (IAM authorises a transaction per item). */
  items?: string[];
}

export interface ProbeOptions {
  /** The function's bundle directory (what SST zips, less its copyFiles). */
  bundleDir?: string;
  /** Or the code.zip SST uploads (bundle and copyFiles): Lambda's /var/task is its contents. */
  codeZip?: string;
  /** An emulator to pass every request on to (still recorded), instead of refusing them all. */
  endpoint?: string;
  /** The handler as Lambda sees it, relative to bundleDir: "path/to/file.export". */
  handler: string;
  /** The function's environment variables from the app. */
  environment: Record<string, string>;
  memoryMb: number;
  event: unknown;
  timeoutMs?: number;
}

function classify(method: string, url: string, headers: Record<string, string | string[] | undefined>, body: string): ProbeRequest {
  const target = String(headers["x-amz-target"] ?? "");
  const json = () => {
    try {
      return JSON.parse(body) as Record<string, unknown>;
    } catch {
      return {};
    }
  };
  if (target.startsWith("DynamoDB_")) {
    const b = json();
    const operation = target.split(".")[1] ?? target;
    if (operation === "TransactWriteItems") {
      const entries = ((b.TransactItems as Record<string, { TableName?: string }>[] | undefined) ?? []).map((item) => Object.entries(item)[0]);
      const kinds: Record<string, string> = { Put: "PutItem", Update: "UpdateItem", Delete: "DeleteItem", ConditionCheck: "ConditionCheckItem" };
      return { service: "dynamodb", operation, resource: String(entries[0]?.[1].TableName ?? ""), items: entries.map(([kind]) => kinds[kind] ?? kind) };
    }
    const table = b.TableName ?? Object.keys((b.RequestItems as object) ?? {})[0] ?? "";
    return { service: "dynamodb", operation, resource: String(table), ...(typeof b.IndexName === "string" ? { index: b.IndexName } : {}) };
  }
  if (target.startsWith("AmazonSQS.")) return { service: "sqs", operation: target.slice(10), resource: String(json().QueueUrl ?? "") };
  const form = new URLSearchParams(body);
  if (target.startsWith("AmazonSimpleNotificationService.") || form.get("Action") === "Publish")
    return {
      service: "sns",
      operation: form.get("Action") ?? target.split(".")[1] ?? "",
      resource: String(form.get("TopicArn") ?? json().TopicArn ?? ""),
    };
  // Path-style S3 (the SDK's setting for an endpoint URL): /bucket/key?query.
  const parsed = new URL(url, "http://probe");
  const [, bucket = "", ...rest] = parsed.pathname.split("/");
  const key = decodeURIComponent(rest.join("/"));
  const q = parsed.searchParams;
  const operation = key
    ? ({
        GET: "GetObject",
        HEAD: "HeadObject",
        PUT: q.has("uploadId") ? "UploadPart" : headers["x-amz-copy-source"] ? "CopyObject" : "PutObject",
        POST: q.has("uploads") ? "CreateMultipartUpload" : q.has("uploadId") ? "CompleteMultipartUpload" : "PostObject",
        DELETE: q.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject",
      }[method] ?? method)
    : ({ GET: q.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects", HEAD: "HeadBucket", POST: q.has("delete") ? "DeleteObjects" : "PostBucket" }[method] ?? method);
  return { service: "s3", operation, resource: decodeURIComponent(bucket), ...(key ? { key } : {}) };
}

/**
 * The IAM actions a request needs (S3's per its authorisation rules, a DynamoDB transaction's per item) and the ARN
 * each is on, in the mocked account.
 */
export function iamRequests(r: ProbeRequest, account: string, region: string): { action: string; arn: string }[] {
  if (r.service === "dynamodb" && r.items) return r.items.map((item) => ({ action: `dynamodb:${item}`, arn: `arn:aws:dynamodb:${region}:${account}:table/${r.resource}` }));
  return [iamRequest(r, account, region)];
}

/** The IAM action a single request needs and the ARN it is on (see iamRequests). */
export function iamRequest(r: ProbeRequest, account: string, region: string): { action: string; arn: string } {
  switch (r.service) {
    case "dynamodb":
      return { action: `dynamodb:${r.operation}`, arn: `arn:aws:dynamodb:${region}:${account}:table/${r.resource}${r.index ? `/index/${r.index}` : ""}` };
    case "sns":
      return { action: `sns:${r.operation}`, arn: r.resource };
    case "sqs":
      // SendMessageBatch is authorised by sqs:SendMessage.
      return { action: `sqs:${r.operation === "SendMessageBatch" ? "SendMessage" : r.operation}`, arn: `arn:aws:sqs:${region}:${account}:${r.resource.split("/").at(-1)}` };
    case "s3": {
      const actions: Record<string, string> = {
        GetObject: "s3:GetObject",
        HeadObject: "s3:GetObject",
        PutObject: "s3:PutObject",
        CreateMultipartUpload: "s3:PutObject",
        UploadPart: "s3:PutObject",
        CompleteMultipartUpload: "s3:PutObject",
        AbortMultipartUpload: "s3:AbortMultipartUpload",
        ListObjects: "s3:ListBucket",
        ListObjectsV2: "s3:ListBucket",
        HeadBucket: "s3:ListBucket",
        DeleteObject: "s3:DeleteObject",
      };
      return { action: actions[r.operation] ?? `s3:${r.operation}`, arn: `arn:aws:s3:::${r.resource}${r.key !== undefined ? `/${r.key}` : ""}` };
    }
    default:
      return { action: r.operation, arn: r.resource };
  }
}

/** IAM's wildcard match: `*` is any run of characters, `?` any one. */
function wildcard(pattern: string, value: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*").replaceAll("?", ".");
  return new RegExp(`^${source}$`).test(value);
}

/** Whether a role's statements (no conditions used here) allow `action` on `arn`: an Allow matches, no Deny does. */
export function allows(statements: { Effect: string; Action: string | string[]; Resource: string | string[] }[], action: string, arn: string): boolean {
  const matching = statements.filter((s) => [s.Action].flat().some((a) => wildcard(a, action)) && [s.Resource].flat().some((p) => wildcard(p, arn)));
  return matching.some((s) => s.Effect === "Allow") && !matching.some((s) => s.Effect === "Deny");
}

export async function probeFunction(options: ProbeOptions): Promise<{ requests: ProbeRequest[]; output: string }> {
  const requests: ProbeRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const request = classify(req.method ?? "GET", req.url ?? "/", req.headers, body.toString("utf8"));
      requests.push(request);
      if (options.endpoint) {
        // Passed on as it came (moto does not check signatures), the answer relayed as it comes back.
        const target = new URL(options.endpoint);
        const forward = httpRequest(
          { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
          (answer) => {
            res.writeHead(answer.statusCode ?? 500, answer.headers);
            answer.pipe(res);
          },
        );
        forward.on("error", (err) => {
          res.writeHead(502);
          res.end(String(err));
        });
        forward.end(body);
        return;
      }
      // Non-retryable answers, so the SDK gives up at once: S3 has nothing, everything else is refused.
      if (request.service === "s3") {
        res.writeHead(404, { "content-type": "application/xml" });
        res.end("<Error><Code>NoSuchKey</Code><Message>nothing here (link probe)</Message></Error>");
      } else {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
        res.end(JSON.stringify({ __type: "com.amazonaws.probe#ValidationException", message: "refused by the link probe" }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const taskRoot = mkdtempSync(path.join(tmpdir(), "canopy-task-"));
  if (options.codeZip) unzip(options.codeZip, taskRoot);
  else if (options.bundleDir) cpSync(options.bundleDir, taskRoot, { recursive: true });
  else throw new Error("probeFunction needs bundleDir or codeZip");
  const exportName = path.extname(options.handler).slice(1);
  const file = path.join(taskRoot, options.handler.slice(0, -(exportName.length + 1)) + ".mjs");
  const script = [
    `import { pathToFileURL } from "node:url";`,
    `const [file, name, event] = process.argv.slice(1);`,
    `const mod = await import(pathToFileURL(file).href);`,
    `const context = { functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, awsRequestId: "probe", memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, getRemainingTimeInMillis: () => 60000 };`,
    `try { console.log("handler returned", JSON.stringify(await mod[name](JSON.parse(event), context))); }`,
    `catch (err) { console.log("handler threw", err.message); }`,
  ].join("\n");
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, file, exportName, JSON.stringify(options.event)], {
    cwd: taskRoot,
    // Lambda's environment, not the test runner's: no CANOPY_* fallbacks can stand in for the links.
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      ...options.environment,
      AWS_LAMBDA_FUNCTION_NAME: "probe",
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memoryMb),
      LAMBDA_TASK_ROOT: taskRoot,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "probe",
      AWS_SECRET_ACCESS_KEY: "probe",
      AWS_ENDPOINT_URL: endpoint,
      AWS_MAX_ATTEMPTS: "1",
      POWERTOOLS_LOG_LEVEL: "ERROR",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  try {
    await new Promise((resolve) => child.on("close", resolve));
  } finally {
    clearTimeout(timer);
    server.close();
    rmSync(taskRoot, { recursive: true, force: true });
  }
  return { requests, output };
}

/** The names in a zip, and extracting it (Python's zipfile: Python is here for moto anyway). */
export function zipEntries(zip: string): string[] {
  const script = "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))";
  return execFileSync("python3", ["-c", script, zip], { encoding: "utf8" }).split("\n").filter(Boolean);
}

/** One file of a zip, as bytes. */
export function zipRead(zip: string, name: string): Buffer {
  const script = "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))";
  return execFileSync("python3", ["-c", script, zip, name], { maxBuffer: 64 * 1024 * 1024 });
}

function unzip(zip: string, dir: string): void {
  execFileSync("python3", ["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])", zip, dir]);
}

/** The SQS event Lambda hands a queue's consumer for one grove task, delivered for the `receives`-th time. */
export function groveTaskEvent(task: GroveTask, queueArn: string, receives: number, messageId = "m-1") {
  return {
    Records: [
      {
        messageId,
        receiptHandle: "r-1",
        body: encodeGroveTask(task),
        attributes: { ApproximateReceiveCount: String(receives), SentTimestamp: "1", SenderId: "probe", ApproximateFirstReceiveTimestamp: "1" },
        messageAttributes: {},
        md5OfBody: "",
        eventSource: "aws:sqs",
        eventSourceARN: queueArn,
        awsRegion: "us-east-1",
      },
    ],
  };
}

/** The stream event Lambda hands the aggregator when `ready` (remaining 0) was written over `before`. */
export function aggregationTriggerEvent(streamArn: string, ready: BuildSummary, before: BuildSummary) {
  return {
    Records: [
      {
        eventID: "e-1",
        eventName: "MODIFY",
        eventVersion: "1.1",
        eventSource: "aws:dynamodb",
        awsRegion: "us-east-1",
        eventSourceARN: streamArn,
        dynamodb: {
          Keys: { buildId: { S: ready.buildId } },
          NewImage: summaryToItem(ready),
          OldImage: summaryToItem(before),
          SequenceNumber: "100",
          SizeBytes: 100,
          StreamViewType: "NEW_AND_OLD_IMAGES",
        },
      },
    ],
  };
}
