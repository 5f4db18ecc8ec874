/** Lambda handlers, as SST wants them: a path from the repo root to the module, then the exported function. */
export const HANDLERS = {
  trainer: "packages/functions/src/trainer.handler",
  aggregator: "packages/functions/src/aggregator.handler",
  dlq: "packages/functions/src/dlq.handler",
  sweeper: "packages/functions/src/sweeper.handler",
} as const;

export type HandlerName = keyof typeof HANDLERS;

/** Longest retention SQS allows, for queues whose messages are kept for inspection. */
export const FOURTEEN_DAYS = 14 * 24 * 3600;
