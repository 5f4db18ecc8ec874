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
