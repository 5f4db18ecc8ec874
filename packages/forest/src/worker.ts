// A training thread: keeps the packs it was sent (shared memory, never copied) and grows trees on request.
import { parentPort } from "node:worker_threads";
import { growTree } from "./fit.ts";
import type { ResolvedParams } from "./options.ts";
import { decodePack, type DatasetPack } from "./pack.ts";
import type { Tree } from "./types.ts";

export type WorkerRequest =
  | { kind: "pack"; bytes: Uint8Array; rowBins: Uint8Array }
  | { kind: "tree"; id: number; hash: string; rows: Uint32Array; params: ResolvedParams; index: number };

export type WorkerReply = { kind: "tree"; id: number; tree: Tree } | { kind: "error"; id: number; message: string };

const packs = new Map<string, DatasetPack>();

parentPort?.on("message", (request: WorkerRequest) => {
  if (request.kind === "pack") {
    const pack = decodePack(request.bytes);
    pack.rowBins = request.rowBins;
    packs.set(pack.hash, pack);
    return;
  }
  try {
    const pack = packs.get(request.hash);
    if (!pack) throw new Error(`pack ${request.hash} was not sent to this worker`);
    const tree = growTree(pack, request.rows, request.params, request.index);
    const transfer = [tree.feature, tree.threshold, tree.thresholdBin, tree.right, tree.missingLeft, tree.gain, tree.values].map((a) => a.buffer as ArrayBuffer);
    parentPort!.postMessage({ kind: "tree", id: request.id, tree } satisfies WorkerReply, transfer);
  } catch (error) {
    parentPort!.postMessage({ kind: "error", id: request.id, message: (error as Error).message } satisfies WorkerReply);
  }
});
