import { AwsSetupError } from "../errors.ts";
/**
 * Lambda event filtering (event source mappings' FilterCriteria), the subset Canopy's patterns use: nested
 * keys and lists of exact values. A record passes a pattern when, for every key of the pattern, the record has
 * that key and either the pattern's value is an object matched recursively, or it is a list containing the
 * record's value (for a list-valued field, any of its elements). Content filters ({"prefix": ...},
 * {"numeric": ...}, {"exists": ...}, {"anything-but": ...}) are refused when the pattern is checked rather
 * than silently misread.
 */
export type FilterPattern = { readonly [key: string]: FilterPattern | readonly FilterValue[] };
type FilterValue = string | number | boolean | null;

/** Throws one line naming the first unsupported or malformed part of the pattern. */
export function checkFilterPattern(pattern: unknown, path = ""): asserts pattern is FilterPattern {
  if (typeof pattern !== "object" || pattern === null || Array.isArray(pattern))
    throw new AwsSetupError(`filter pattern${path ? ` at ${path}` : ""} must be an object`);
  const keys = Object.keys(pattern);
  if (keys.length === 0) throw new AwsSetupError(`filter pattern${path ? ` at ${path}` : ""} is empty`);
  for (const key of keys) {
    const value = (pattern as Record<string, unknown>)[key];
    const at = path ? `${path}.${key}` : key;
    if (Array.isArray(value)) {
      if (value.length === 0) throw new AwsSetupError(`filter pattern at ${at}: an empty list matches nothing`);
      for (const v of value) {
        if (v !== null && typeof v === "object")
          throw new AwsSetupError(`filter pattern at ${at}: content filter ${JSON.stringify(v)} is not supported by this emulator (exact values only)`);
      }
    } else {
      checkFilterPattern(value, at);
    }
  }
}

function valueMatches(allowed: readonly FilterValue[], value: unknown): boolean {
  if (Array.isArray(value)) return value.some((v) => valueMatches(allowed, v));
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    return allowed.some((a) => a === value);
  return false; // an object where the pattern expects a value
}

export function matchesFilterPattern(pattern: FilterPattern, record: unknown): boolean {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return false;
  for (const [key, expected] of Object.entries(pattern)) {
    if (!Object.hasOwn(record, key)) return false;
    const value = (record as Record<string, unknown>)[key];
    const ok = Array.isArray(expected) ? valueMatches(expected as readonly FilterValue[], value) : matchesFilterPattern(expected as FilterPattern, value);
    if (!ok) return false;
  }
  return true;
}

/** Lambda's rule for several filters: a record passes if it matches any of them (no filters: everything passes). */
export function passesFilters(patterns: readonly FilterPattern[], record: unknown): boolean {
  return patterns.length === 0 || patterns.some((p) => matchesFilterPattern(p, record));
}
