import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { CanopyError } from "./errors.ts";
import { allRows, checkRows, forestOf, resolveTreeIndices, type FitOptions } from "./fit.ts";
import type { Forest } from "./forest.ts";
import { resolveParams, type FitParams, type ResolvedParams } from "./options.ts";
import { decodePack, rowMajorBins, type DatasetPack } from "./pack.ts";
import { startModuleWorker } from "./threads.ts";
import type { Tree } from "./types.ts";
import type { WorkerReply, WorkerRequest } from "./worker.ts";

export interface TrainerPoolOptions {
  /** Worker threads; default: the machine's available parallelism. */
  workers?: number;
}

/** What a worker needs to know about a pack: its bytes and row-major bins, both in shared memory. */
interface SharedPack {
  pack: DatasetPack;
  rowBins: Uint8Array;
}

interface Slot {
  worker: Worker;
  packs: Set<string>;
  busy: boolean;
}

interface Job {
  request: WorkerRequest & { kind: "tree" };
  resolve: (tree: Tree) => void;
  reject: (error: Error) => void;
}

/**
 * Trains trees on worker threads. A pack is put in shared memory once (with its row-major copy) and posted
 * to each worker once; trees are handed out one at a time to whichever worker is free.
 */
export class TrainerPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly pending = new Map<number, Job>();
  private readonly shared = new Map<string, SharedPack>();
  private nextId = 1;
  private closed = false;
  private failure: Error | null = null;

  constructor(options: TrainerPoolOptions = {}) {
    const n = options.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1) throw new CanopyError(`workers must be an integer >= 1 (got ${n})`);
    this.size = n;
  }

  /** Trains the trees of a build (or grove) like fitForest, spread over the pool's threads. */
  async fit(pack: DatasetPack, params: FitParams = {}, options: FitOptions = {}): Promise<Forest> {
    const resolved = resolveParams(params, pack.target.task);
    const rows = options.rows ?? allRows(pack.nRows);
    checkRows(pack, rows);
    const indices = resolveTreeIndices(resolved, options.treeIndices);
    const trees = await Promise.all(indices.map((t) => this.trainTree(pack, rows, resolved, t)));
    return forestOf(pack, resolved, trees);
  }

  /** Trains one tree of a build on a free worker. `rows` should be SharedArrayBuffer-backed to avoid copies. */
  trainTree(pack: DatasetPack, rows: Uint32Array, params: ResolvedParams, index: number): Promise<Tree> {
    if (this.closed) return Promise.reject(new CanopyError("the trainer pool is closed"));
    if (this.failure) return Promise.reject(this.failure);
    const shared = this.share(pack);
    const sharedRows = rows.buffer instanceof SharedArrayBuffer ? rows : toShared(rows);
    return new Promise<Tree>((resolve, reject) => {
      const request = { kind: "tree" as const, id: this.nextId++, hash: shared.pack.hash, rows: sharedRows, params, index };
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const error = new CanopyError("the trainer pool was closed");
    for (const job of this.queue.splice(0)) job.reject(error);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private share(pack: DatasetPack): SharedPack {
    let entry = this.shared.get(pack.hash);
    if (!entry) {
      const bytes = pack.bytes.buffer instanceof SharedArrayBuffer ? pack.bytes : toSharedBytes(pack.bytes);
      const sharedPack = bytes === pack.bytes ? pack : decodePack(bytes);
      entry = { pack: sharedPack, rowBins: rowMajorBins(sharedPack, true) };
      this.shared.set(pack.hash, entry);
    }
    return entry;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      const { hash } = job.request;
      if (!slot.packs.has(hash)) {
        const entry = this.shared.get(hash)!;
        slot.worker.postMessage({ kind: "pack", bytes: entry.pack.bytes, rowBins: entry.rowBins } satisfies WorkerRequest);
        slot.packs.add(hash);
      }
      slot.busy = true;
      slot.worker.ref();
      this.pending.set(job.request.id, job);
      slot.worker.postMessage(job.request);
    }
  }

  private spawn(): Slot {
    const worker = startWorker();
    const slot: Slot = { worker, packs: new Set(), busy: false };
    worker.on("message", (reply: WorkerReply) => {
      const job = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      slot.busy = false;
      slot.worker.unref(); // an idle pool must not keep the process alive
      if (job) {
        if (reply.kind === "tree") job.resolve(reply.tree);
        else job.reject(new CanopyError(reply.message));
      }
      this.pump();
    });
    worker.on("error", (error) => this.fail(error));
    worker.on("exit", (code) => {
      if (!this.closed && code !== 0) this.fail(new CanopyError(`a training worker exited with code ${code}`));
    });
    this.slots.push(slot);
    return slot;
  }

  private fail(error: Error): void {
    this.failure = error;
    for (const job of this.pending.values()) job.reject(error);
    this.pending.clear();
    for (const job of this.queue.splice(0)) job.reject(error);
  }
}

function toSharedBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}

function toShared(rows: Uint32Array): Uint32Array {
  const out = new Uint32Array(new SharedArrayBuffer(rows.byteLength));
  out.set(rows);
  return out;
}

function startWorker(): Worker {
  return startModuleWorker(new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url));
}
