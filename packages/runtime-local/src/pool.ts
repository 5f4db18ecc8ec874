import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { InputError, InternalError, type BuildLedger, type GroveResult } from "@canopy/core";
import type { PartitionPackOutcome, SpilledPartition } from "@canopy/core/ingest";
import { decodePack, rowMajorBins, type DatasetPack } from "@canopy/forest";
import { TrainerTaskError } from "./errors.ts";
import { LEDGER_METHODS, serializeError, type FromTrainer, type ToTrainer, type TrainerInit } from "./protocol.ts";

interface SharedPack {
  bytes: Uint8Array;
  rowBins: Uint8Array;
}

/** A job in flight (its id is its key in its slot's jobs). */
interface Job {
  /** A grove's result, or a partition's pack outcome (the message kind says which). */
  resolve: (result: never) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  packs: Set<string>;
  /** Its jobs in flight, by id: at most the pool's depth. */
  jobs: Map<number, Job>;
}

export interface GrovePoolOptions {
  size: number;
  init: TrainerInit;
  ledger: BuildLedger;
  /** The trainer thread: a JavaScript module (Node runs worker threads without a TypeScript loader). */
  module: URL;
  /** Jobs a trainer holds at once (default 2; see GrovePool). */
  depth?: number;
}

/**
 * Trainer threads, started on demand, each holding up to `depth` jobs. A trainer computes one grove at a time (its
 * thread is one), but a grove waits twice for the main thread, which owns the ledger: its checks before training and
 * its landing after. With a second job in hand, a trainer trains it while the first waits, instead of idling while
 * the main thread aggregates (a partitioned flights run's trainers waited 8 s of 75 each with one job).
 */
export class GrovePool {
  readonly size: number;
  readonly depth: number;
  private readonly slots: Slot[] = [];
  private readonly shared = new Map<string, SharedPack>();
  private readonly ledgerCalls = new Set<Promise<unknown>>();
  private nextJob = 1;
  private closed = false;

  constructor(private readonly options: GrovePoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new InputError(`workers must be an integer >= 1 (got ${options.size})`);
    checkModule(options.module);
    this.size = options.size;
    this.depth = options.depth ?? 2;
    if (!Number.isInteger(this.depth) || this.depth < 1) throw new InternalError(`a trainer's depth must be an integer >= 1 (got ${this.depth})`);
  }

  /** Jobs the trainers could take now. */
  get free(): number {
    if (this.closed) return 0;
    const held = this.slots.reduce((sum, s) => sum + s.jobs.size, 0);
    return this.size * this.depth - held;
  }

  /** Puts a pack (and its row-major bins) in shared memory; each trainer is sent it once, before its first grove on it. */
  share(pack: DatasetPack): void {
    if (this.shared.has(pack.hash)) return;
    const bytes = pack.bytes.buffer instanceof SharedArrayBuffer ? pack.bytes : toShared(pack.bytes);
    const sharedPack = bytes === pack.bytes ? pack : decodePack(bytes);
    const rowBins = rowMajorBins(sharedPack, true);
    this.shared.set(pack.hash, { bytes, rowBins });
  }

  /** Trains one delivery (an encoded GroveTask) on a free trainer. Check `free` first. */
  run(body: string, receiveCount: number, packHash: string): Promise<GroveResult> {
    const slot = this.freeSlot();
    if (slot instanceof Error) return Promise.reject(slot);
    const shared = this.shared.get(packHash);
    if (shared && !slot.packs.has(packHash)) {
      slot.worker.postMessage({ kind: "pack", bytes: shared.bytes, rowBins: shared.rowBins } satisfies ToTrainer);
      slot.packs.add(packHash);
    }
    return this.send<GroveResult>(slot, (id) => ({ kind: "task", id, body, receiveCount }));
  }

  /** Packs one partition of a partitioned run's spill on a free trainer (core's PartitionPacker). Check `free` first. */
  packPartition(job: SpilledPartition): Promise<PartitionPackOutcome> {
    const slot = this.freeSlot();
    if (slot instanceof Error) return Promise.reject(slot);
    return this.send<PartitionPackOutcome>(slot, (id) => ({ kind: "pack-partition", id, job }));
  }

  /** An idle trainer, else a new one while there is room, else the least busy one with room. */
  private freeSlot(): Slot | Error {
    if (this.closed) return new InternalError("the runtime is closed");
    let least: Slot | undefined;
    for (const s of this.slots) if (!least || s.jobs.size < least.jobs.size) least = s;
    if (least && least.jobs.size === 0) return least;
    if (this.slots.length < this.size) return this.spawn();
    if (least && least.jobs.size < this.depth) return least;
    return new InternalError("no free trainer");
  }

  private send<T>(slot: Slot, message: (id: number) => ToTrainer): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const id = this.nextJob++;
      slot.jobs.set(id, { resolve: resolve as (result: never) => void, reject });
      slot.worker.ref();
      slot.worker.postMessage(message(id));
    });
  }

  /** Stops the trainers at once (groves in flight are abandoned, not acked) and waits for ledger calls already made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const slots = this.slots.splice(0);
    for (const slot of slots) for (const job of slot.jobs.values()) job.reject(new InternalError("the runtime was closed"));
    await Promise.all(slots.map((s) => s.worker.terminate()));
    await Promise.allSettled([...this.ledgerCalls]);
  }

  private spawn(): Slot {
    const worker = new Worker(this.options.module, { workerData: this.options.init });
    const slot: Slot = { worker, packs: new Set(), jobs: new Map() };
    worker.on("message", (message: FromTrainer) => {
      if (message.kind === "ledger") {
        this.answerLedger(slot, message.id, message.method, message.args);
        return;
      }
      const job = slot.jobs.get(message.id);
      if (!job) return;
      slot.jobs.delete(message.id);
      if (slot.jobs.size === 0) worker.unref(); // an idle pool must not keep the process alive
      if (message.kind === "done") job.resolve(message.result as never);
      else if (message.kind === "packed") job.resolve(message.outcome as never);
      else job.reject(new TrainerTaskError(message.error));
    });
    const lost = (error: Error) => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      const jobs = [...slot.jobs.values()];
      slot.jobs.clear();
      for (const job of jobs) job.reject(new TrainerTaskError({ name: "Error", message: `trainer thread died: ${error.message}`, policy: "internal" }));
    };
    worker.on("error", lost);
    worker.on("exit", (code) => {
      if (!this.closed) lost(new Error(`exit code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private answerLedger(slot: Slot, id: number, method: string, args: unknown[]): void {
    const reply = (message: ToTrainer) => {
      if (!this.closed) slot.worker.postMessage(message);
    };
    if (!(LEDGER_METHODS as readonly string[]).includes(method)) {
      reply({ kind: "ledger-reply", id, ok: false, error: { name: "Error", message: `unknown ledger method ${method}`, policy: "internal" } });
      return;
    }
    const ledger = this.options.ledger as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const call = ledger[method](...args).then(
      (value) => reply({ kind: "ledger-reply", id, ok: true, value }),
      (err) => reply({ kind: "ledger-reply", id, ok: false, error: serializeError(err) }),
    );
    this.ledgerCalls.add(call);
    void call.finally(() => this.ledgerCalls.delete(call));
  }
}

/** A trainer module that cannot start would fail every grove; say why once, up front (an internal fault, not input). */
function checkModule(module: URL): void {
  if (!/\.[cm]?js$/.test(module.pathname)) throw new InternalError(`the trainer thread must be a JavaScript module (got ${module.href})`);
  if (module.protocol === "file:" && !existsSync(fileURLToPath(module))) {
    throw new InternalError(`the trainer thread ${fileURLToPath(module)} is missing: run \`npm run build\``);
  }
}

function toShared(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}
