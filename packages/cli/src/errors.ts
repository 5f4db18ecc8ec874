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

/** A path as messages show it: whole, unless it is too long to be a real one (echoed input stays short). */
function shownPath(path: string): string {
  return path.length <= 240 ? path : `${path.slice(0, 60)}…(${path.length} characters)`;
}

/** Node's file errors as a user-facing usage error naming the path, or undefined for anything else. */
export function fileError(err: unknown, fullPath: string, what = "file"): UsageError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const path = shownPath(fullPath);
  if (code === "ENAMETOOLONG") return new UsageError(`${what} name too long: ${path}`);
  if (code === "ENOENT") return new UsageError(`${what} not found: ${path}`);
  if (code === "EISDIR") return new UsageError(`${path} is a directory, expected a ${what}`);
  if (code === "EACCES" || code === "EPERM") return new UsageError(`cannot read ${path}: permission denied`);
  if (code === "ENOTDIR") return new UsageError(`${what} not found: ${path}`);
  return undefined;
}

/** What Node's system error codes mean when the path is the user's (a --root, a working directory, a file). */
const SYSTEM_MEANING: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOTDIR: "a part of the path is a file, not a directory",
  EISDIR: "it is a directory",
  ENAMETOOLONG: "the name is too long",
};

const SYSTEM_VERB: Record<string, string> = { mkdir: "create", open: "open", rename: "replace", rmdir: "remove", unlink: "remove", scandir: "list", stat: "read" };

/**
 * A Node file-system error about a path the user chose (permissions, a file where a directory should be) as one
 * usage line naming the path; undefined for anything else. The last resort for paths no command checked first.
 */
export function systemError(err: unknown): UsageError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.code !== "string" || typeof e.path !== "string") return undefined;
  const meaning = SYSTEM_MEANING[e.code];
  if (meaning === undefined) return undefined;
  const verb = SYSTEM_VERB[e.syscall ?? ""] ?? "use";
  return new UsageError(`cannot ${verb} ${shownPath(e.path)}: ${meaning}`);
}
