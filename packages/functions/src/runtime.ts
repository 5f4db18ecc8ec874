import { randomBytes } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import type { LogLevel } from "@aws-lambda-powertools/logger/types";
import type { Context } from "aws-lambda";

/** Structured JSON logs, one logger per function; level: the argument, else POWERTOOLS_LOG_LEVEL, else INFO. */
export function functionLogger(fn: string, logLevel?: LogLevel): Logger {
  return new Logger({ serviceName: "canopy", persistentKeys: { fn }, ...(logLevel ? { logLevel } : {}) });
}

/** The function's memory size: the invocation's context, else Lambda's environment; undefined off Lambda. */
export function memoryMb(context: Pick<Context, "memoryLimitInMB"> | undefined, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = Number(context?.memoryLimitInMB ?? env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Made once per container (module init): stands in for the container when Lambda gives no log stream. */
const CONTAINER = randomBytes(4).toString("hex");

/**
 * A short name for this Lambda container (execution environment), for the build's timeline: the first 8 hex
 * digits of its log stream's id (`2026/01/01/[$LATEST]<32 hex>`), so a grove's row leads to its logs; else an
 * id made at module init. Short because every grove's stats carry it in the ledger item (400 KB at most).
 */
export function containerId(context: Pick<Context, "logStreamName"> | undefined): string {
  const match = /\]([0-9a-f]{8})[0-9a-f]*$/i.exec(context?.logStreamName ?? "");
  return match ? match[1].toLowerCase() : CONTAINER;
}
