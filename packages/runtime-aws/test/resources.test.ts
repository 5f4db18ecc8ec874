import { describe, expect, it } from "vitest";
import { RESOURCE_ENV, resolveResources, type SstResourceLoader } from "../src/resources.ts";

/** Like SST's Resource: a proxy that throws for a link the function does not have. */
function sstResource(links: Record<string, Record<string, string>>): SstResourceLoader {
  return async () => ({
    Resource: new Proxy(links, {
      get(target, name: string) {
        if (!(name in target)) throw new Error(`"${name}" is not linked in your sst.config.ts`);
        return target[name];
      },
    }),
  });
}

describe("resolveResources", () => {
  it("takes CANOPY_* variables first and does not load sst when they cover everything", async () => {
    const env = { CANOPY_BUCKET: "b", CANOPY_TABLE: "t", CANOPY_QUEUE_URL: "http://q", CANOPY_TOPIC_ARN: "arn:t" };
    let loaded = 0;
    const loadSst: SstResourceLoader = async () => {
      loaded++;
      return undefined;
    };
    expect(await resolveResources(["bucket", "table", "queueUrl", "topicArn"], { env, loadSst })).toEqual({
      bucket: "b",
      table: "t",
      queueUrl: "http://q",
      topicArn: "arn:t",
    });
    expect(loaded).toBe(0);
  });

  it("falls back to SST links, reading name / url / arn", async () => {
    const loadSst = sstResource({
      CanopyBucket: { name: "app-bucket" },
      CanopyBuilds: { name: "app-builds" },
      CanopyGroves: { url: "https://sqs/groves" },
      CanopyNotifications: { arn: "arn:aws:sns:x" },
    });
    expect(await resolveResources(["bucket", "table", "queueUrl", "topicArn"], { env: { CANOPY_TABLE: "override" }, loadSst })).toEqual({
      bucket: "app-bucket",
      table: "override",
      queueUrl: "https://sqs/groves",
      topicArn: "arn:aws:sns:x",
    });
  });

  it("returns only what was asked for, so a function needs only its own links", async () => {
    const loadSst = sstResource({ CanopyBucket: { name: "app-bucket" }, CanopyBuilds: { name: "app-builds" } });
    expect(await resolveResources(["bucket", "table"], { env: {}, loadSst })).toEqual({ bucket: "app-bucket", table: "app-builds" });
  });

  it("names every missing resource in one line", async () => {
    const loadSst = sstResource({ CanopyBucket: { name: "app-bucket" } });
    await expect(resolveResources(["bucket", "queueUrl", "topicArn"], { env: {}, loadSst })).rejects.toThrow(
      `AWS resources not configured: queueUrl (set ${RESOURCE_ENV.queueUrl} or link CanopyGroves), topicArn (set ${RESOURCE_ENV.topicArn} or link CanopyNotifications)`,
    );
    await expect(resolveResources(["table"], { env: {}, loadSst: async () => undefined })).rejects.toThrow(/table \(set CANOPY_TABLE or link CanopyBuilds\)/);
  });
});
