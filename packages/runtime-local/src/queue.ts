import { encodeGroveTask, InputError, type GroveTask, type TaskQueue } from "@canopy/core";

/** A queued grove task, as a consumer receives it (like an SQS message). */
export interface QueueMessage {
  readonly id: number;
  /** The encoded GroveTask: consumers decode it, so everything goes through the real codec. */
  readonly body: string;
  /** Deliveries so far, this one included (SQS's ApproximateReceiveCount). */
  receiveCount: number;
}

/**
 * An in-process queue with SQS's at-least-once contract: a received message stays owned by the queue until
 * the consumer acks it; a released message is delivered again, until `maxReceives` deliveries, after which
 * the consumer should dead-letter it. Subclass and override `send` to simulate duplicate deliveries.
 */
export class LocalQueue implements TaskQueue {
  readonly maxReceives: number;
  private readonly visible: QueueMessage[] = [];
  private readonly inFlight = new Map<number, QueueMessage>();
  private readonly listeners = new Set<() => void>();
  private nextId = 1;

  constructor(options: { maxReceives?: number } = {}) {
    const max = options.maxReceives ?? 3;
    if (!Number.isInteger(max) || max < 1) throw new InputError(`maxReceives must be an integer >= 1 (got ${max})`);
    this.maxReceives = max;
  }

  async send(tasks: GroveTask[]): Promise<void> {
    for (const task of tasks) this.visible.push({ id: this.nextId++, body: encodeGroveTask(task), receiveCount: 0 });
    if (tasks.length > 0) this.notify();
  }

  /** The next visible message, now in flight; undefined when none is waiting. */
  receive(): QueueMessage | undefined {
    const message = this.visible.shift();
    if (!message) return undefined;
    message.receiveCount++;
    this.inFlight.set(message.id, message);
    return message;
  }

  /** Handled: the message is gone for good. */
  ack(message: QueueMessage): void {
    this.inFlight.delete(message.id);
  }

  /** Not handled: visible again at the back of the queue, unless it was already acked. */
  release(message: QueueMessage): void {
    if (!this.inFlight.delete(message.id)) return;
    this.visible.push(message);
    this.notify();
  }

  /** True when a failed delivery of this message was its last: the consumer should dead-letter it. */
  exhausted(message: QueueMessage): boolean {
    return message.receiveCount >= this.maxReceives;
  }

  /** Messages waiting, and messages received but neither acked nor released. */
  get depth(): { visible: number; inFlight: number } {
    return { visible: this.visible.length, inFlight: this.inFlight.size };
  }

  /** Drops every message not in flight (a stopping runtime; the ledger knows what is outstanding). */
  purge(): void {
    this.visible.length = 0;
  }

  /** Called whenever messages become visible. */
  onAvailable(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
