export { createAggregator, type AggregatorDeps } from "./aggregator.ts";
export { createDeadLetterConsumer, type DeadLetterDeps } from "./dlq.ts";
export { createPredictFunction, requestFromEvent, resultFromResponse, type PredictDeps } from "./predict.ts";
export { resources } from "./resources.ts";
export { containerId, functionLogger, memoryMb } from "./runtime.ts";
export { aggregationLeaseMs, createSweeper, stallLimitMs, type SweeperDeps, type SweeperPorts, type SweepSummary } from "./sweeper.ts";
export { createTrainer, type TrainerDeps } from "./trainer.ts";
