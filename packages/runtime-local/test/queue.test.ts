import { decodeGroveTask, type GroveTask } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { LocalQueue } from "../src/queue.ts";

function task(grove: number): GroveTask {
  return {
    v: 1,
    buildId: "b-0123456789abcdef",
    grove,
    treeStart: grove * 5,
    treeEnd: grove * 5 + 5,
    packKey: `packs/${"a".repeat(64)}.pack`,
    packHash: "a".repeat(64),
    seed: 1,
    testFraction: 0.25,
    params: { n_estimators: 20, random_state: 1 },
    queuedAt: 1,
  };
}

describe("LocalQueue", () => {
  it("delivers in order through the task codec and deletes a message only when acked", async () => {
    const queue = new LocalQueue();
    let woken = 0;
    queue.onAvailable(() => woken++);
    await queue.send([task(0), task(1)]);
    expect(woken).toBe(1);
    const first = queue.receive()!;
    expect(decodeGroveTask(first.body)).toEqual(task(0));
    expect(first.receiveCount).toBe(1);
    expect(queue.depth).toEqual({ visible: 1, inFlight: 1 });
    queue.ack(first);
    queue.release(first); // too late: acked messages stay gone
    expect(queue.depth).toEqual({ visible: 1, inFlight: 0 });
    expect(decodeGroveTask(queue.receive()!.body).grove).toBe(1);
    expect(queue.receive()).toBeUndefined();
  });

  it("redelivers a released message at the back until maxReceives, then reports it exhausted", async () => {
    const queue = new LocalQueue({ maxReceives: 3 });
    await queue.send([task(0), task(1)]);
    const first = queue.receive()!;
    expect(queue.exhausted(first)).toBe(false);
    queue.release(first);
    const other = queue.receive()!; // the released message went to the back
    expect(decodeGroveTask(other.body).grove).toBe(1);
    queue.ack(other);
    const second = queue.receive()!;
    expect(second.id).toBe(first.id);
    expect([second.receiveCount, queue.exhausted(second)]).toEqual([2, false]);
    queue.release(second);
    const third = queue.receive()!;
    expect([third.receiveCount, queue.exhausted(third)]).toEqual([3, true]);
    queue.ack(third);
    expect(queue.depth).toEqual({ visible: 0, inFlight: 0 });
  });

  it("rejects a maxReceives below 1", () => {
    expect(() => new LocalQueue({ maxReceives: 0 })).toThrow(/maxReceives must be an integer >= 1/);
  });
});
