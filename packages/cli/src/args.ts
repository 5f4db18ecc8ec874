import { availableParallelism } from "node:os";
import { InvalidArgumentError } from "commander";

/** Plain decimal notation, like the engine's CSV cells: no hex, no Infinity, no empty string. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function parseNumber(text: string): number {
  const value = Number(text);
  if (!DECIMAL.test(text.trim()) || !Number.isFinite(value)) throw new InvalidArgumentError("Expected a number.");
  return value;
}

/** Integers only; ranges are checked by the build spec so every range message has one source. */
export function parseInteger(text: string): number {
  const value = parseNumber(text);
  if (!Number.isInteger(value)) throw new InvalidArgumentError("Expected an integer.");
  return value;
}

/**
 * An integer count or a fraction. JS numbers cannot tell 1 from 1.0, and the engine reads 1 as a count, so a
 * value written as a whole number with a decimal point ("1.0", "2.") is refused instead of silently becoming
 * a count.
 */
export function parseCountOrFraction(text: string): number {
  const value = parseNumber(text);
  if (Number.isInteger(value) && /[.eE]/.test(text)) {
    throw new InvalidArgumentError(`Write an integer count (${value}) or a fraction below 1 (e.g. 0.5).`);
  }
  return value;
}

/** --max-features: sqrt, log2, all, an integer count, or a fraction in (0, 1). */
export function parseMaxFeatures(text: string): "sqrt" | "log2" | "all" | number {
  if (text === "sqrt" || text === "log2" || text === "all") return text;
  try {
    return parseCountOrFraction(text);
  } catch (err) {
    if (err instanceof InvalidArgumentError && err.message === "Expected a number.")
      throw new InvalidArgumentError('Expected sqrt, log2, all, an integer count or a fraction in (0, 1).');
    throw err;
  }
}

/** --tag k=v, repeatable: collected into one record; a repeated key keeps the last value. */
export function collectTag(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("Expected key=value.");
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}

/** Column names for --categorical / --numeric / --drop: comma-separated, repeatable, accumulated. */
export function collectColumns(text: string, previous: string[] | undefined): string[] {
  const names = text.split(",").map((n) => n.trim());
  if (names.some((n) => n === "")) throw new InvalidArgumentError("Expected column names separated by commas.");
  return [...(previous ?? []), ...names];
}

export function parseWorkers(text: string): number {
  const value = parseInteger(text);
  if (value < 1) throw new InvalidArgumentError("Expected an integer >= 1.");
  return value;
}

/** Trainer threads per CPU core at most: each is CPU-bound and holds its own heap, so more only costs memory. */
export const WORKERS_PER_CORE = 4;

/** --workers: an integer from 1 to WORKERS_PER_CORE per core of this machine. */
export function parseTrainerThreads(text: string): number {
  const value = parseWorkers(text);
  const cores = availableParallelism();
  const most = WORKERS_PER_CORE * cores;
  if (value > most)
    throw new InvalidArgumentError(
      `At most ${most} on this machine (${WORKERS_PER_CORE} per CPU core, ${cores} cores): each trainer thread trains on one core and holds its own memory.`,
    );
  return value;
}

export function parseHttpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError("Expected an http:// or https:// URL.");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new InvalidArgumentError("Expected an http:// or https:// URL.");
  return url.href;
}
