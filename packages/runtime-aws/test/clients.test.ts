import { afterEach, describe, expect, it } from "vitest";
import { ListQueuesCommand } from "@aws-sdk/client-sqs";
import { clients, clientSettings, resetClients } from "../src/clients.ts";

// The SDK warns once per process about Node 20 support ending in 2027; not this suite's business.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const saved = { ...process.env };
afterEach(() => {
  resetClients();
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe("clientSettings", () => {
  it("defaults the region to us-east-1 and uses path-style S3 only against an emulator", () => {
    expect(clientSettings({ AWS_ENDPOINT_URL: "http://127.0.0.1:5000" })).toEqual({ region: "us-east-1", forcePathStyle: true, useQueueUrlAsEndpoint: false });
    expect(clientSettings({ AWS_ENDPOINT_URL_S3: "http://127.0.0.1:5000" })).toEqual({ region: "us-east-1", forcePathStyle: true, useQueueUrlAsEndpoint: true });
    // An SQS endpoint override: requests go there, not to the host a queue's URL names.
    expect(clientSettings({ AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:5000", AWS_REGION: "eu-west-1" })).toEqual({ region: "eu-west-1", forcePathStyle: false, useQueueUrlAsEndpoint: false });
    expect(clientSettings({ AWS_ENDPOINT_URL: "http://localhost:4566", AWS_REGION: "eu-west-1" })).toEqual({ region: "eu-west-1", forcePathStyle: true, useQueueUrlAsEndpoint: false });
    expect(clientSettings({ AWS_DEFAULT_REGION: "ap-south-1" })).toEqual({ region: "ap-south-1", forcePathStyle: false, useQueueUrlAsEndpoint: true });
    // Deployed without an override the SDK resolves the region itself.
    expect(clientSettings({})).toEqual({ region: undefined, forcePathStyle: false, useQueueUrlAsEndpoint: true });
  });
});

describe("clients", () => {
  it("creates each client once, until reset", () => {
    process.env.AWS_REGION = "us-east-1";
    const first = clients.sqs();
    expect(clients.sqs()).toBe(first);
    resetClients();
    expect(clients.sqs()).not.toBe(first);
  });

  it("sends to AWS_ENDPOINT_URL with no endpoint configured in code (the SDK reads it natively)", async () => {
    Object.assign(process.env, { AWS_ENDPOINT_URL: "http://127.0.0.1:4599", AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" });
    delete process.env.AWS_REGION;
    delete process.env.AWS_PROFILE;
    resetClients();
    const sqs = clients.sqs();
    let seen: { hostname?: string; port?: number; protocol?: string } | undefined;
    // Capture the signed request and stop before anything goes on the wire.
    sqs.middlewareStack.add(
      () => async (args) => {
        seen = args.request as typeof seen;
        throw new Error("captured");
      },
      { step: "finalizeRequest", priority: "low", name: "capture" },
    );
    await expect(sqs.send(new ListQueuesCommand({}))).rejects.toThrow("captured");
    expect(seen).toMatchObject({ protocol: "http:", hostname: "127.0.0.1", port: 4599 });
    expect(await sqs.config.region()).toBe("us-east-1");
  });
});
