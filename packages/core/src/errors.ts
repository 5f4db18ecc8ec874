import { CanopyError, printable, quoted } from "@canopy/forest";

/**
 * What a fault means to whoever handles it, declared on the error's class (Powertools-style):
 * - `input`: the user's data, spec, options or request are wrong. Never retried (the same input fails the same
 *   way); the CLI exits 2; serving answers 4xx.
 * - `transient`: the world hiccuped (throttling, a dropped socket, a closed runtime). Retried by the queue or
 *   stream; the CLI exits 1.
 * - `internal`: Canopy or its store is in a state it should not be (a record that vanished, a missing pack, a
 *   dead trainer). Retried where that can help (a redelivery on a fresh trainer); the CLI exits 1.
 */
export type ErrorPolicy = "input" | "transient" | "internal";

const POLICIES: readonly ErrorPolicy[] = ["input", "transient", "internal"];

const declared = (value: unknown): ErrorPolicy | undefined =>
  typeof value === "string" && (POLICIES as readonly string[]).includes(value) ? (value as ErrorPolicy) : undefined;

/**
 * The policy of any thrown value: the instance's own `policy` (an error revived from another thread, or one
 * whose policy depends on its code), else its class's static `policy`. The engine's CanopyError declares none
 * (forest stays free of pipeline concepts) and is the base of its input errors, so it counts as input. Anything
 * else is unknown (AWS SDK throttling, sockets) and transient, as before the taxonomy.
 */
export function policyOf(err: unknown): ErrorPolicy {
  if (err === null || typeof err !== "object") return "transient";
  const own = declared((err as { policy?: unknown }).policy);
  if (own) return own;
  const ofClass = declared((err.constructor as { policy?: unknown } | undefined)?.policy);
  if (ofClass) return ofClass;
  return err instanceof CanopyError ? "input" : "transient";
}

/** Whether retrying could help: everything but input errors (the same input fails the same way). */
export function isRetryable(err: unknown): boolean {
  return policyOf(err) !== "input";
}

/** Bad input outside the engine (a build id that is not in the store, an unusable directory). */
export class InputError extends CanopyError {
  static readonly policy: ErrorPolicy = "input";
}

/** A broken invariant or a store missing what it should hold: not the user's input, so exit 1, never exit 2. */
export class InternalError extends Error {
  static readonly policy: ErrorPolicy = "internal";
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A fault that may pass: retried by queues and streams. */
export class TransientError extends Error {
  static readonly policy: ErrorPolicy = "transient";
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A build spec that fails validation. The message has one line per bad field; `issues` has them structured. */
export class SpecError extends CanopyError {
  static readonly policy: ErrorPolicy = "input";
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("\n"));
  }
}

/** A grove task message that cannot be decoded, or that points at data which is not there. */
export class TaskError extends CanopyError {
  static readonly policy: ErrorPolicy = "input";
}

/** A ledger call that cannot be honoured (unknown build, grove out of range). */
export class LedgerError extends CanopyError {
  static readonly policy: ErrorPolicy = "input";
  constructor(
    message: string,
    readonly code: "not-found" | "invalid" = "invalid",
  ) {
    super(message);
  }
}

/**
 * Aggregation could not produce a model (a build that vanished, a missing grove blob, mismatched groves, ...):
 * the store, not the user's input, is at fault. aggregate() turns it into a FAILED build either way.
 */
export class AggregationError extends InternalError {}

/** A promotion that cannot be made or a name that cannot be an alias. `code` tells the caller which (CLI exit 2, HTTP 404/400). */
export class RegistryError extends CanopyError {
  static readonly policy: ErrorPolicy = "input";
  constructor(
    message: string,
    readonly code: "invalid" | "not-found" | "not-completed" | "incompatible",
  ) {
    super(message);
  }
}

/** One line describing any thrown value, for ledger reasons and notifications. */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return cutLine(text.split("\n").filter((l) => l.trim() !== "").join("; "), 500);
}

/** Most characters of an error line shown to a client or a terminal: whatever a message quotes, the answer stays short. */
export const MAX_ERROR_LINE = 1_000;

/** A line cut to `max` characters, saying how much was left out (the last resort behind quoting input in short). */
export function cutLine(line: string, max = MAX_ERROR_LINE): string {
  if (line.length <= max) return line;
  const keep = Math.max(0, max - ` … (${line.length} more characters)`.length);
  return `${line.slice(0, keep)} … (${line.length - keep} more characters)`;
}

/** Any input value for a message, in short: a string quoted and escaped, anything else as JSON; at most ~60 characters. */
export function inShort(value: unknown, max = 60): string {
  if (typeof value === "string") return quoted(value, max);
  const text = value === undefined ? "nothing" : (JSON.stringify(value) ?? String(value));
  return printable(text.length > max ? `${text.slice(0, max)}…` : text);
}
