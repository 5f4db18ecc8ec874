import { parentPort, threadId, workerData } from "node:worker_threads";
import {
  decodeGroveTask,
  InternalError,
  LedgerError,
  PackCache,
  trainGrove,
  type BuildLedger,
  type GroveResult,
  type GroveTask,
} from "@canopy/core";
import { packSpilledPartition } from "@canopy/core/ingest";
import { decodePack } from "@canopy/forest";
import { DiskBlobStore } from "./blob-store.ts";
import type { SerializedError } from "./errors.ts";
import { LEDGER_METHODS, serializeError, type FromTrainer, type LedgerMethod, type ToTrainer, type TrainerInit } from "./protocol.ts";

export interface TrainerHooks {
  /** Runs before each delivery is trained; a throw fails that delivery (fault injection in tests). */
  beforeTask?(task: GroveTask, receiveCount: number, data: unknown): void | Promise<void>;
}

/**
 * The body of a trainer thread, like a Lambda trainer: it runs core's trainGrove with its own DiskBlobStore,
 * a PackCache pre-filled with the packs the main thread shares, and a ledger proxy whose calls the main thread
 * (which owns the one ledger and its change feed) answers. Before a partitioned run's groves, it also packs
 * partitions from the run's spill (packSpilledPartition). A trainer module is a file that calls this.
 */
export function serveTrainer(hooks: TrainerHooks = {}): void {
  const port = parentPort;
  if (!port) throw new InternalError("serveTrainer must run in a worker thread");
  const init = workerData as TrainerInit;
  const blobs = new DiskBlobStore(init.root, { fsync: init.fsync });
  const packs = new PackCache(8);
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextCall = 1;
  const post = (message: FromTrainer) => port.postMessage(message);

  const call = (method: LedgerMethod, args: unknown[]) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextCall++;
      calls.set(id, { resolve, reject });
      post({ kind: "ledger", id, method, args });
    });
  const ledger = Object.fromEntries(LEDGER_METHODS.map((m) => [m, (...args: unknown[]) => call(m, args)])) as unknown as BuildLedger;
  ledger.watch = () => {
    throw new InternalError("a trainer cannot watch the ledger");
  };

  port.on("message", (message: ToTrainer) => {
    if (message.kind === "pack") {
      const pack = decodePack(message.bytes);
      pack.rowBins = message.rowBins;
      packs.set(pack);
    } else if (message.kind === "ledger-reply") {
      const pending = calls.get(message.id);
      calls.delete(message.id);
      if (!pending) return;
      if (message.ok) pending.resolve(message.value);
      else pending.reject(reviveError(message.error));
    } else if (message.kind === "pack-partition") {
      packSpilledPartition(message.job, blobs).then(
        (outcome) => post({ kind: "packed", id: message.id, outcome }),
        (err) => post({ kind: "failed", id: message.id, error: serializeError(err) }),
      );
    } else {
      void run(message.id, message.body, message.receiveCount);
    }
  });

  async function run(id: number, body: string, receiveCount: number): Promise<void> {
    try {
      const task = decodeGroveTask(body);
      await hooks.beforeTask?.(task, receiveCount, init.data);
      const result: GroveResult = await trainGrove(task, { blobs, ledger, packs }, { worker: `thread-${threadId}`, attempt: receiveCount });
      post({ kind: "done", id, result });
    } catch (err) {
      post({ kind: "failed", id, error: serializeError(err) });
    }
  }
}

function reviveError(e: SerializedError): Error {
  if (e.name === "LedgerError") return new LedgerError(e.message, e.code === "not-found" ? "not-found" : "invalid");
  // The policy travels with it, so the trainer's own verdict on a ledger fault stays the main thread's.
  return Object.assign(new Error(e.message), { name: e.name, policy: e.policy });
}
