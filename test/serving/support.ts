import type { ChildProcess } from "node:child_process";
import { finished, start as startCli, type Run } from "../cli/support.ts";
import { readFileSync } from "node:fs";
import { Logger } from "@aws-lambda-powertools/logger";
import { lambdaContext } from "@canopy/runtime-aws";
import { buildPack, fitForest, parseCsv, type Forest } from "@canopy/forest";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { expect } from "vitest";

export const fixturePath = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
export const fixture = (name: string) => readFileSync(fixturePath(name), "utf8");

export const quiet = () => new Logger({ serviceName: "canopy-test", logLevel: "SILENT" });
export const context = () => lambdaContext("canopy-predict", 1024, 30_000, "us-east-1");

export function train(name: string, trees: number, seed = 0): Forest {
  return fitForest(buildPack(parseCsv(fixture(name))), { n_estimators: trees, random_state: seed });
}

let requests = 0;
/**
 * A Lambda function URL event (payload format 2.0) as AWS delivers it: lower-case headers, the query both raw
 * and parsed, requestContext.http with method and path, an IAM authorizer, and a body that is base64 unless
 * its content type is text (JSON, text/*).
 */
export function functionUrlEvent(options: {
  method?: string;
  path?: string;
  query?: Record<string, string>;
  contentType?: string;
  body?: string | Uint8Array;
  base64?: boolean;
}): APIGatewayProxyEventV2 {
  const method = options.method ?? "POST";
  const path = options.path ?? "/";
  const query = options.query ?? {};
  const rawQueryString = new URLSearchParams(query).toString();
  const domain = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws";
  const textual = options.contentType !== undefined && /^(text\/|application\/json)/.test(options.contentType);
  const base64 = options.base64 ?? (options.body !== undefined && !textual);
  const bytes = options.body === undefined ? undefined : typeof options.body === "string" ? Buffer.from(options.body, "utf8") : Buffer.from(options.body);
  const event = {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString,
    headers: {
      host: domain,
      "x-amzn-trace-id": "Root=1-5e723db6-1f1c8e2b4d3b1f6a7e0f1234",
      "x-forwarded-proto": "https",
      "x-forwarded-port": "443",
      "user-agent": "canopy-test",
      ...(options.contentType !== undefined ? { "content-type": options.contentType } : {}),
      ...(bytes ? { "content-length": String(bytes.byteLength) } : {}),
    },
    ...(rawQueryString ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: "123456789012",
      apiId: "abcdefghijklmnopqrstuvwxyz012345",
      authorizer: { iam: { accessKey: "AKIA...", accountId: "123456789012", callerId: "AIDA...", principalOrgId: null, userArn: "arn:aws:iam::123456789012:user/test", userId: "AIDA..." } },
      domainName: domain,
      domainPrefix: "abcdefghijklmnopqrstuvwxyz012345",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "203.0.113.7", userAgent: "canopy-test" },
      requestId: `req-${++requests}`,
      routeKey: "$default",
      stage: "$default",
      time: "21/Nov/2026:08:00:00 +0000",
      timeEpoch: 1_795_000_000_000,
    },
    ...(bytes ? { body: base64 ? bytes.toString("base64") : bytes.toString("utf8"), isBase64Encoded: base64 } : { isBase64Encoded: false }),
  };
  return event as unknown as APIGatewayProxyEventV2;
}

export function bodyOf(result: APIGatewayProxyStructuredResultV2): Record<string, unknown> & { error?: string } {
  expect(result.isBase64Encoded).toBe(false);
  return JSON.parse(result.body as string) as Record<string, unknown> & { error?: string };
}

export { BIN, finished, type Run } from "../cli/support.ts";

/** Environment for a CLI child with no AWS credentials anywhere (so remote requests go unsigned, at once). */
export function noCredentials(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, AWS_EC2_METADATA_DISABLED: "true", AWS_CONFIG_FILE: "/nonexistent/config", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials" };
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"]) delete out[k];
  return out;
}

/** Starts the real CLI (node + the bin) in `cwd`, by default with no AWS credentials. */
export function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = noCredentials()): ChildProcess {
  return startCli(args, cwd, env);
}

export const canopy = (args: string[], cwd: string, env?: NodeJS.ProcessEnv) => finished(start(args, cwd, env));

/** `canopy serve` in the background: resolves with its URL once it listens; `stop()` sends SIGINT to its pid. */
export async function serveInBackground(args: string[], cwd: string): Promise<{ url: string; stop(): Promise<Run>; stderr(): string }> {
  const child = start(["serve", "--port", "0", ...args], cwd);
  const done = finished(child);
  let stderr = "";
  child.stderr!.on("data", (d: string) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`canopy serve did not start: ${stderr}`)), 30_000);
    child.stderr!.on("data", () => {
      const m = /listening on (http:\/\/[^ ]+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void done.then((run) => {
      clearTimeout(timer);
      reject(new Error(`canopy serve exited ${run.code}: ${run.stderr}`));
    });
  });
  return {
    url,
    stderr: () => stderr,
    stop: () => {
      child.kill("SIGINT");
      return done;
    },
  };
}
