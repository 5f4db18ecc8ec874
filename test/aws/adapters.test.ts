import { readFileSync } from "node:fs";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { decodeGroveTask, keys, parseBuildSpec, prepareDataset, readManifest, submitBuild, type BuildNotification } from "@canopy/core";
import { awsPorts, clients, clientSettings, resolveResources, S3BlobStore, SnsNotifier } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { DEV_RESOURCES, MOTO_NOT_FOUND, receiveMessages, receiveNotifications, startMoto, useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator({ visibilityTimeoutSeconds: 5 });
const MiB = 1024 * 1024;
const iris = readFileSync(new URL("../fixtures/iris.csv", import.meta.url));

/** Deterministic, incompressible-looking bytes. */
function bytes(n: number, salt: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x9e3779b9 ^ salt;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** An S3 client of its own that counts the PutObject / multipart calls it sends. */
function countingS3() {
  const counts = new Map<string, number>();
  const client = new S3Client({ region: "us-east-1", forcePathStyle: true });
  client.middlewareStack.add(
    (next, context) => (args) => {
      const name = context.commandName ?? "?";
      counts.set(name, (counts.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: "countCommands" },
  );
  return { client, counts };
}

describe("the harness", () => {
  it("runs moto on a loopback port and points the SDK at it through the environment alone", () => {
    const { moto, resources } = aws.current;
    expect(moto.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.AWS_ENDPOINT_URL).toBe(moto.endpoint);
    expect(clientSettings()).toEqual({ region: "us-east-1", forcePathStyle: true, useQueueUrlAsEndpoint: false });
    expect(resources.table).toBe(DEV_RESOURCES.table.name);
    expect(resources.streamArn).toContain(`table/${DEV_RESOURCES.table.name}/stream/`);
    console.log(`moto_server answered ${moto.startupMs.toFixed(0)} ms after spawn`);
  });

  it("fails with one clear line when moto_server is not installed", async () => {
    await expect(startMoto({ command: "moto_server_not_installed_here" })).rejects.toThrow(MOTO_NOT_FOUND);
    expect(MOTO_NOT_FOUND).toBe("moto_server not found: pip install 'moto[server]'");
  });

  it("gives the grove queue its visibility timeout and a redrive to the DLQ after maxReceiveCount receives", async () => {
    const { queueUrl, deadLetterQueueUrl, deadLetterQueueArn } = aws.current.resources;
    const sqs = clients.sqs();
    const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["All"] }))).Attributes!;
    expect(attrs.VisibilityTimeout).toBe("5");
    expect(JSON.parse(attrs.RedrivePolicy!)).toEqual({ deadLetterTargetArn: deadLetterQueueArn, maxReceiveCount: DEV_RESOURCES.queue.maxReceiveCount });

    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: "poison" }));
    // Receive without deleting, making it visible again at once: a trainer that keeps failing.
    const receive = () => sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 0, WaitTimeSeconds: 1, AttributeNames: ["All"] }));
    for (let i = 1; i <= DEV_RESOURCES.queue.maxReceiveCount; i++) {
      const got = await receive();
      expect(got.Messages?.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount])).toEqual([["poison", String(i)]]);
    }
    expect((await receive()).Messages ?? []).toEqual([]);
    const dead = await receiveMessages(deadLetterQueueUrl, { count: 1 });
    expect(dead.map((m) => m.body)).toEqual(["poison"]);
  });
});

describe("S3BlobStore on moto", () => {
  it("puts, gets and checks blobs; missing keys read as undefined", async () => {
    const store = new S3BlobStore(aws.current.resources.bucket);
    const blob = bytes(3000, 1);
    expect(await store.exists("builds/x/a.bin")).toBe(false);
    expect(await store.get("builds/x/a.bin")).toBeUndefined();
    await store.put("builds/x/a.bin", blob, "application/octet-stream");
    expect(await store.exists("builds/x/a.bin")).toBe(true);
    expect(Buffer.from((await store.get("builds/x/a.bin"))!).equals(Buffer.from(blob))).toBe(true);
    const head = await clients.s3().send(new HeadObjectCommand({ Bucket: store.bucket, Key: "builds/x/a.bin" }));
    expect(head.ContentType).toBe("application/octet-stream");
    expect(head.ETag).not.toContain("-"); // a single PutObject
    await store.put("builds/x/empty.bin", new Uint8Array(0));
    expect(await store.get("builds/x/empty.bin")).toEqual(new Uint8Array(0));
  });

  it("uploads a blob at or above the threshold in parts, and reads it back whole", async () => {
    const { client, counts } = countingS3();
    const store = new S3BlobStore(aws.current.resources.bucket, client, { multipartThreshold: 6 * MiB, partSize: 5 * MiB });
    const big = bytes(11 * MiB + 123, 2);
    await store.put("packs/big.pack", big, "application/vnd.canopy.pack");
    expect(counts.get("CreateMultipartUploadCommand")).toBe(1);
    expect(counts.get("UploadPartCommand")).toBe(3);
    expect(counts.get("PutObjectCommand")).toBeUndefined();
    const head = await client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: "packs/big.pack" }));
    expect(head.ETag).toMatch(/-3"$/); // S3's multipart ETag: md5 of the part md5s, dash, part count
    expect(head.ContentLength).toBe(big.length);
    expect(head.ContentType).toBe("application/vnd.canopy.pack");
    expect(Buffer.from((await store.get("packs/big.pack"))!).equals(Buffer.from(big))).toBe(true);

    await store.put("packs/small.pack", bytes(6 * MiB - 1, 3));
    expect(counts.get("PutObjectCommand")).toBe(1);
    expect(counts.get("CreateMultipartUploadCommand")).toBe(1);
  });

  it("uploads a content-addressed pack once, however many times the dataset is prepared", async () => {
    const { client, counts } = countingS3();
    const store = new S3BlobStore(aws.current.resources.bucket, client);
    const first = await prepareDataset(iris, { label: "species" }, store);
    const second = await prepareDataset(iris, { label: "species" }, store);
    expect(second.packKey).toBe(first.packKey);
    expect(first.packKey).toBe(keys.pack(first.pack.hash));
    expect(counts.get("PutObjectCommand")).toBe(1);
    expect(counts.get("HeadObjectCommand")).toBe(2);
    expect(await store.exists(first.packKey)).toBe(true);
  });
});

describe("submitting through the real adapters", () => {
  it("stores the manifest, writes the ledger record and queues 25 grove tasks that each arrive exactly once", async () => {
    const resources = await resolveResources(["bucket", "table", "queueUrl", "topicArn"]);
    expect(resources.queueUrl).toBe(aws.current.resources.queueUrl);
    const ports = awsPorts(resources);
    const prepared = await prepareDataset(iris, { label: "species" }, ports.blobs);
    const spec = parseBuildSpec({ dataset: "test/fixtures/iris.csv", label: "species", n_estimators: 25, grove_size: 1, seed: 11, tags: { suite: "aws" } });
    const submission = await submitBuild(spec, ports, prepared);
    const id = submission.buildId;

    const record = await ports.ledger.get(id);
    expect(record).toMatchObject({ status: "TRAINING", total: 25, remaining: 25, landed: [], tags: { suite: "aws" } });
    const manifest = await readManifest(ports.blobs, id);
    expect(manifest.packKey).toBe(prepared.packKey);

    const messages = await receiveMessages(resources.queueUrl, { count: 25 });
    expect(messages).toHaveLength(25);
    expect(await receiveMessages(resources.queueUrl, { count: 1, timeoutMs: 1000 })).toEqual([]); // nothing extra
    const tasks = messages.map((m) => decodeGroveTask(m.body));
    expect(tasks.map((t) => t.grove).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    for (const [i, task] of tasks.entries()) {
      expect(task).toMatchObject({ buildId: id, packKey: prepared.packKey, treeStart: task.grove, treeEnd: task.grove + 1, seed: 11 });
      expect(messages[i].attributes).toEqual({ buildId: id, grove: String(task.grove) });
    }
  });
});

describe("SnsNotifier on moto", () => {
  it("delivers the notification with buildId, status, type and tags attributes to the subscribed queue", async () => {
    const { topicArn, inboxUrl } = aws.current.resources;
    const note: BuildNotification = {
      v: 1,
      type: "build.completed",
      buildId: "b-00112233445566ff",
      status: "COMPLETED",
      tags: { team: "ml", run: "7" },
      metrics: { task: "classification", accuracy: 0.93 },
      modelKey: keys.model("b-00112233445566ff"),
      reportKey: keys.report("b-00112233445566ff"),
      failedGroves: [{ grove: 3, error: "out of memory" }],
    };
    await new SnsNotifier(topicArn).publish(note);
    const [delivery, ...more] = await receiveNotifications(inboxUrl, { count: 1 });
    expect(more).toEqual([]);
    expect(await receiveNotifications(inboxUrl, { count: 1, timeoutMs: 1000 })).toEqual([]); // published once, delivered once
    expect(delivery.notification).toEqual(JSON.parse(JSON.stringify(note)));
    expect(delivery.attributes).toEqual({
      buildId: "b-00112233445566ff",
      status: "COMPLETED",
      type: "build.completed",
      tags: JSON.stringify({ team: "ml", run: "7" }),
    });
  });
});
