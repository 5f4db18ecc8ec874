import { CanopyError } from "@canopy/forest";

/** A build spec that fails validation. The message has one line per bad field; `issues` has them structured. */
export class SpecError extends CanopyError {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("\n"));
  }
}

/** A grove task message that cannot be decoded, or that points at data which is not there. */
export class TaskError extends CanopyError {}

/** A ledger call that cannot be honoured (unknown build, grove out of range). */
export class LedgerError extends CanopyError {
  constructor(
    message: string,
    readonly code: "not-found" | "invalid" = "invalid",
  ) {
    super(message);
  }
}

/** Aggregation could not produce a model (missing grove blob, mismatched groves, ...). */
export class AggregationError extends CanopyError {}

/** One line describing any thrown value, for ledger reasons and notifications. */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  const line = text.split("\n").filter((l) => l.trim() !== "").join("; ");
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

/**
 * Whether retrying could help. Canopy errors describe bad input (spec, task, data, options): retrying
 * replays the same input and fails the same way, so runtimes should give up at once.
 */
export function isRetryable(err: unknown): boolean {
  return !(err instanceof CanopyError);
}
