import type { ErrorPolicy } from "@canopy/core";

/** Exit codes: 0 ok, 1 the work failed (a build failed, an unexpected error), 2 bad usage or input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad usage or input: the user can fix it. Exit code 2. */
export class UsageError extends Error {
  static readonly policy: ErrorPolicy = "input";
  override name = "UsageError";
}

/** The work itself failed (e.g. a build ended FAILED): not the user's input. Exit code 1. */
export class FailedError extends Error {
  static readonly policy: ErrorPolicy = "internal";
  override name = "FailedError";
}

/** Stopped by Ctrl-C: the message says how to pick the build up again. Exit code 130 (128 + SIGINT). */
export class InterruptedExit extends Error {
  override name = "InterruptedExit";
  readonly exitCode = 130;
}

/**
 * The exit code is the error's declared policy (core's policyOf): input errors, ours (UsageError) and the
 * engine's and core's (CSV, options, spec, model bytes), exit 2; transient and internal faults exit 1. The
 * caller passes the policy, so that starting the CLI does not load core.
 */
export function exitCodeFor(err: unknown, policy: ErrorPolicy): number {
  if (err instanceof InterruptedExit) return err.exitCode;
  return policy === "input" ? EXIT_USAGE : EXIT_FAILED;
}

/** One line, whatever was thrown: multi-line messages (a spec with several bad fields) are joined with "; ". */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join("; ");
}

/** Node's file errors as a user-facing usage error naming the path, or undefined for anything else. */
export function fileError(err: unknown, path: string, what = "file"): UsageError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT") return new UsageError(`${what} not found: ${path}`);
  if (code === "EISDIR") return new UsageError(`${path} is a directory, expected a ${what}`);
  if (code === "EACCES" || code === "EPERM") return new UsageError(`cannot read ${path}: permission denied`);
  if (code === "ENOTDIR") return new UsageError(`${what} not found: ${path}`);
  return undefined;
}
