import type { Context } from "aws-lambda";
import { lambdaContext } from "./events.ts";
import { AwsSetupError } from "../errors.ts";

/** What the emulator reports about each invocation (for logs, progress and tests). */
export interface InvocationInfo {
  functionName: string;
  records: number;
  /** Records the handler reported as failed (batchItemFailures), or all of them if it threw. */
  failed: number;
  ms: number;
  error?: unknown;
}

export type LambdaHandler<E, R> = (event: E, context: Context) => Promise<R>;

/** A counting semaphore: at most `limit` holders at once, served in arrival order. */
export class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new AwsSetupError(`concurrency must be an integer >= 1; got ${limit}`);
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

export interface FunctionSettings {
  functionName: string;
  /** Lambda memory size, reported to the handler as context.memoryLimitInMB. Default 1024. */
  memoryMb?: number;
  /** Reported through context.getRemainingTimeInMillis(); not enforced (a handler cannot be killed in-process). */
  timeoutMs?: number;
}

/**
 * Runs handler invocations under the emulator's concurrency limit, each with a fresh Lambda context, and
 * reports them. Errors are returned, not thrown: the mapping decides what a failure means.
 */
export class Invoker {
  constructor(
    private readonly slots: Slots,
    private readonly region: string,
    private readonly onInvocation: (info: InvocationInfo) => void = () => {},
  ) {}

  async invoke<E extends { Records: unknown[] }, R>(
    fn: FunctionSettings,
    handler: LambdaHandler<E, R>,
    event: E,
    failedOf: (result: R) => number,
  ): Promise<{ ok: true; result: R } | { ok: false; error: unknown }> {
    return this.slots.run(async () => {
      const context = lambdaContext(fn.functionName, fn.memoryMb ?? 1024, fn.timeoutMs ?? 900_000, this.region);
      const started = performance.now();
      try {
        const result = await handler(event, context);
        this.onInvocation({ functionName: fn.functionName, records: event.Records.length, failed: failedOf(result), ms: performance.now() - started });
        return { ok: true as const, result };
      } catch (error) {
        const ms = performance.now() - started;
        this.onInvocation({ functionName: fn.functionName, records: event.Records.length, failed: event.Records.length, ms, error });
        return { ok: false as const, error };
      }
    });
  }
}

export const isAbort = (err: unknown, signal: AbortSignal) => signal.aborted || (err as { name?: string }).name === "AbortError";
