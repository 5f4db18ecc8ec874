export { createLocalRuntime, InterruptedError, type BuildOutcome, type GroveProgress, type LocalRuntime, type LocalRuntimeOptions, type ProgressEvent, type Stage } from "./runtime.ts";
export { DiskBlobStore } from "./blob-store.ts";
export { DiskLedger, type DiskLedgerOptions } from "./disk-ledger.ts";
export { LocalQueue, type QueueMessage } from "./queue.ts";
export { exportArtifacts, loadModel, type ExportedArtifacts } from "./artifacts.ts";
export { formatNotification } from "./format.ts";
export { serveTrainer, type TrainerHooks } from "./trainer.ts";
export { writeFileAtomic } from "./atomic.ts";
export { DiskModelRegistry } from "./registry.ts";
