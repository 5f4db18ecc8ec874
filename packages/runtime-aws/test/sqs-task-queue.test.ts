import type { SendMessageBatchCommand, SendMessageBatchCommandOutput, SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { decodeGroveTask, type GroveTask } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { SqsTaskQueue, type SqsSender } from "../src/sqs-task-queue.ts";

function task(grove: number): GroveTask {
  return {
    v: 1,
    buildId: "b-0123456789abcdef",
    grove,
    treeStart: grove * 2,
    treeEnd: grove * 2 + 2,
    packKey: `packs/${"a".repeat(64)}.pack`,
    packHash: "a".repeat(64),
    seed: 7,
    testFraction: 0.25,
    params: { n_estimators: 100, random_state: 7 },
    queuedAt: 1_700_000_000_000,
  };
}

/** Records every batch; `failures(call, entries)` names the entry ids to fail and whether it is the sender's fault. */
function fakeSqs(failures: (call: number, entries: SendMessageBatchRequestEntry[]) => { id: string; senderFault?: boolean }[] = () => []) {
  const calls: SendMessageBatchRequestEntry[][] = [];
  const sender: SqsSender = {
    async send(command: SendMessageBatchCommand): Promise<SendMessageBatchCommandOutput> {
      const entries = command.input.Entries ?? [];
      calls.push(entries);
      const failed = failures(calls.length, entries);
      const ids = new Set<string | undefined>(failed.map((f) => f.id));
      return {
        $metadata: {},
        Successful: entries.filter((e) => !ids.has(e.Id)).map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: "" })),
        Failed: failed.map((f) => ({ Id: f.id, SenderFault: f.senderFault ?? false, Code: f.senderFault ? "InvalidMessageContents" : "InternalError", Message: "boom" })),
      };
    },
  };
  return { sender, calls };
}

const noSleep = (delays: number[]) => async (ms: number) => {
  delays.push(ms);
};

describe("SqsTaskQueue", () => {
  it("sends tasks in batches of at most 10, one encoded task per message", async () => {
    const { sender, calls } = fakeSqs();
    await new SqsTaskQueue("https://sqs/q", sender, { concurrency: 1 }).send(Array.from({ length: 23 }, (_, g) => task(g)));
    expect(calls.map((c) => c.length)).toEqual([10, 10, 3]);
    const sent = calls.flat();
    expect(sent.map((e) => decodeGroveTask(e.MessageBody!))).toEqual(Array.from({ length: 23 }, (_, g) => task(g)));
    expect(new Set(sent.map((e) => e.Id)).size).toBe(23);
    expect(sent[4].MessageAttributes).toEqual({
      buildId: { DataType: "String", StringValue: "b-0123456789abcdef" },
      grove: { DataType: "Number", StringValue: "4" },
    });
  });

  it("sends nothing for no tasks", async () => {
    const { sender, calls } = fakeSqs();
    await new SqsTaskQueue("https://sqs/q", sender).send([]);
    expect(calls).toEqual([]);
  });

  it("retries only the entries SQS failed, with growing backoff, until they are accepted", async () => {
    // First call fails t2 and t7, the retry fails t7 again, the third call accepts it.
    const { sender, calls } = fakeSqs((call) => (call === 1 ? [{ id: "t2" }, { id: "t7" }] : call === 2 ? [{ id: "t7" }] : []));
    const delays: number[] = [];
    await new SqsTaskQueue("https://sqs/q", sender, { sleep: noSleep(delays), baseDelayMs: 100 }).send(Array.from({ length: 10 }, (_, g) => task(g)));
    expect(calls.map((c) => c.map((e) => e.Id))).toEqual([Array.from({ length: 10 }, (_, i) => `t${i}`), ["t2", "t7"], ["t7"]]);
    expect(decodeGroveTask(calls[2][0].MessageBody!).grove).toBe(7);
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeLessThanOrEqual(200);
  });

  it("gives up after maxAttempts with the number of tasks still refused", async () => {
    const { sender, calls } = fakeSqs((_, entries) => entries.filter((e) => e.Id !== "t0").map((e) => ({ id: e.Id! })));
    const queue = new SqsTaskQueue("https://sqs/q", sender, { sleep: noSleep([]), maxAttempts: 3 });
    await expect(queue.send([task(0), task(1), task(2)])).rejects.toThrow("SQS did not accept 2 grove task(s) after 3 attempts: InternalError: boom");
    expect(calls).toHaveLength(3);
  });

  it("does not retry an entry rejected as the sender's fault", async () => {
    const { sender, calls } = fakeSqs((call) => (call === 1 ? [{ id: "t1", senderFault: true }] : []));
    const queue = new SqsTaskQueue("https://sqs/q", sender, { sleep: noSleep([]) });
    await expect(queue.send([task(0), task(1)])).rejects.toThrow("SQS rejected grove task t1: InvalidMessageContents: boom");
    expect(calls).toHaveLength(1);
  });
});
