// What every engine runner returns for one (engine, case) measurement.
export type EngineName = "canopy" | "sklearn" | "ml-random-forest";

export interface EngineResult {
  engine: EngineName;
  caseId: string;
  trees: number;
  /** "timeout": killed at the cap (capSeconds); "error": failed, see message. */
  status: "ok" | "timeout" | "error";
  message?: string;
  capSeconds?: number;
  /** Wall seconds to train from float arrays; for Canopy this INCLUDES packSeconds. */
  fitSeconds?: number;
  /** Canopy only: buildPack (binning) seconds. */
  packSeconds?: number;
  /** Best of the predict repeats over the whole test set. */
  predictSeconds?: number;
  predictRowsPerSec?: number;
  accuracy?: number;
  modelBytes?: number;
  nodeCount?: number;
  /** Canopy: a second pack + fit of the same case in the same process (compiled code warm), when measured. */
  warm?: { fitSeconds: number; packSeconds: number };
  /** Single-row predict latency in process (one call per row), when measured. */
  latency?: { p50Ms: number; p99Ms: number; rows: number };
  /** Extra engine facts worth keeping in the raw JSON (versions, fingerprints). */
  info?: Record<string, string | number>;
}

export function bytesPerNode(r: EngineResult | undefined): number | undefined {
  if (!r || r.status !== "ok" || r.modelBytes === undefined || !r.nodeCount) return undefined;
  return r.modelBytes / r.nodeCount;
}

export function failed(engine: EngineName, caseId: string, trees: number, err: unknown): EngineResult {
  const message = (err instanceof Error ? err.message : String(err)).split("\n")[0];
  return { engine, caseId, trees, status: "error", message };
}
