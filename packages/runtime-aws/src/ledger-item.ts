import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { isLedgerId, summaryOf, type BuildStatus, type BuildSummary, type GroveStats, type SettledGrove } from "@canopy/core";
import { AwsInternalError } from "./errors.ts";
import { OPEN_BUILDS_INDEX, TTL_ATTRIBUTE } from "./names.ts";

/**
 * The ledger on one DynamoDB table (partition key `buildId`, S), two kinds of items per build:
 *
 * - the counter, key `b-<16 hex>`: the BuildSummary's fields as top-level attributes (`status` S, `remaining` N,
 *   ... which condition expressions and the stream filter read), `lastSettled` and `result` (M), `tags` (M); plus
 *   `open` (S, "1" while the build is not finished: the key of the sparse `open-builds` index) and, once finished,
 *   `expiresAt` (N, epoch seconds: the table's TTL attribute). Its size does not depend on the number of groves.
 * - one entry per settled grove, key `b-<16 hex>#<5-digit grove>`: `build` (S), `grove` (N), `outcome` (S), `stats`
 *   (M) or `error` (S), `expiresAt` (N).
 *
 * Alias items (`alias#<name>`) share the table; neither they nor the entries have `status` and `remaining`.
 */
export type Item = Record<string, AttributeValue>;

export { OPEN_BUILDS_INDEX, TTL_ATTRIBUTE };

const STATUSES: readonly BuildStatus[] = ["PENDING", "TRAINING", "AGGREGATING", "COMPLETED", "FAILED"];

/** The key of a grove's entry. Grove numbers have five digits (keys.grove's limit), so entries sort by grove. */
export function groveKey(buildId: string, grove: number): string {
  return `${buildId}#${String(grove).padStart(5, "0")}`;
}

export function summaryToItem(summary: BuildSummary, extra: { open?: boolean; expiresAt?: number } = {}): Item {
  return marshall(
    {
      ...summaryOf(summary),
      ...(extra.open ? { [OPEN_BUILDS_INDEX.hashKey]: OPEN_BUILDS_INDEX.value } : {}),
      ...(extra.expiresAt !== undefined ? { [TTL_ATTRIBUTE]: extra.expiresAt } : {}),
    },
    { removeUndefinedValues: true },
  );
}

/** The attributes a counter may hold beyond the summary's own (storage only: never part of a record). */
export const STORAGE_ATTRIBUTES = [OPEN_BUILDS_INDEX.hashKey, TTL_ATTRIBUTE] as const;

/**
 * True when an image is a build's counter. Entries, aliases and the key-only INSERT moto emits before the real one
 * when an UpdateItem creates an item are not.
 */
export function isBuildItem(item: Item | undefined): item is Item {
  const id = item?.buildId?.S;
  return Boolean(id && isLedgerId(id) && item!.status?.S && STATUSES.includes(item!.status.S as BuildStatus) && item!.total?.N && item!.remaining?.N);
}

/** A counter item as a BuildSummary (absent optional fields stay absent). Reads counters of earlier versions too. */
export function itemToSummary(item: Item): BuildSummary {
  if (!isBuildItem(item)) throw new AwsInternalError(`DynamoDB item ${JSON.stringify((item as Item).buildId?.S ?? null)} is not a Canopy build counter`);
  const raw = unmarshall(item) as Record<string, unknown>;
  for (const key of STORAGE_ATTRIBUTES) delete raw[key];
  const legacy = legacyCounts(raw);
  return summaryOf({ tags: {}, ...raw, ...legacy } as unknown as BuildSummary);
}

/**
 * Counters written before the ledger kept entries apart held every grove in the item (`landed` NS, `groveStats`,
 * `failures`); their counts are derived so they still list and show. Such builds finished long ago or cannot be
 * continued by this version.
 */
function legacyCounts(raw: Record<string, unknown>): Partial<BuildSummary> {
  if (raw.landedCount !== undefined) return {};
  const landed = [...((raw.landed as Set<number> | undefined) ?? [])];
  const stats = (raw.groveStats as Record<string, GroveStats> | undefined) ?? {};
  return {
    landedCount: landed.length,
    failedCount: Number(raw.failedCount ?? 0),
    treesLanded: landed.reduce((sum, g) => sum + (stats[String(g)]?.trees ?? 0), 0),
  };
}

/** The grove entries a legacy counter holds inside itself (none for a current one). */
export function legacyEntries(item: Item): SettledGrove[] {
  const raw = unmarshall(item) as { landed?: Set<number>; groveStats?: Record<string, GroveStats>; failures?: Record<string, string> };
  if (!raw.landed && !raw.failures) return [];
  const out: SettledGrove[] = [];
  for (const g of raw.landed ?? []) out.push({ grove: g, outcome: "landed", stats: raw.groveStats?.[String(g)] as GroveStats });
  for (const [g, error] of Object.entries(raw.failures ?? {})) out.push({ grove: Number(g), outcome: "failed", error });
  return out;
}

export function entryToItem(buildId: string, entry: SettledGrove, expiresAt: number): Item {
  return marshall(
    {
      buildId: groveKey(buildId, entry.grove),
      build: buildId,
      grove: entry.grove,
      outcome: entry.outcome,
      ...(entry.outcome === "landed" ? { stats: entry.stats } : { error: entry.error }),
      [TTL_ATTRIBUTE]: expiresAt,
    },
    { removeUndefinedValues: true },
  );
}

export function itemToEntry(item: Item): SettledGrove {
  const raw = unmarshall(item) as { grove?: number; outcome?: string; stats?: GroveStats; error?: string };
  if (typeof raw.grove !== "number") throw new AwsInternalError(`DynamoDB item ${JSON.stringify(item.buildId?.S ?? null)} is not a grove entry`);
  if (raw.outcome === "landed" && raw.stats) return { grove: raw.grove, outcome: "landed", stats: raw.stats };
  if (raw.outcome === "failed" && typeof raw.error === "string") return { grove: raw.grove, outcome: "failed", error: raw.error };
  throw new AwsInternalError(`DynamoDB item ${item.buildId?.S} is not a grove entry`);
}

/**
 * The size of an item by DynamoDB's rules ("Item sizes and formats" in the DynamoDB developer guide): each
 * attribute's name (UTF-8 bytes) plus its value: strings their UTF-8 bytes, binaries their raw bytes, numbers 1
 * byte per two significant digits plus 1, null and booleans 1 byte, sets the sum of their elements, lists and maps
 * 3 bytes plus 1 byte per element plus their elements (with a map's keys counted like names). Write units are
 * charged per started KB of the larger of the item before and after a write (twice in a transaction).
 */
export function itemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += utf8(name) + valueSize(value);
  return size;
}

function utf8(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Significant digits of a DynamoDB number (leading and trailing zeros, sign, point and exponent dropped). */
function numberSize(text: string): number {
  const mantissa = text.trim().replace(/^[-+]/, "").replace(/[eE][-+]?\d+$/, "").replace(".", "");
  const digits = mantissa.replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return v.B.byteLength;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS !== undefined) return v.SS.reduce((s, x) => s + utf8(x), 0);
  if (v.NS !== undefined) return v.NS.reduce((s, x) => s + numberSize(x), 0);
  if (v.BS !== undefined) return v.BS.reduce((s, x) => s + x.byteLength, 0);
  if (v.L !== undefined) return 3 + v.L.reduce((s, x) => s + 1 + valueSize(x), 0);
  if (v.M !== undefined) return 3 + Object.entries(v.M).reduce((s, [k, x]) => s + 1 + utf8(k) + valueSize(x), 0);
  throw new AwsInternalError(`not a DynamoDB attribute value: ${JSON.stringify(v).slice(0, 80)}`);
}

/** Write units of a write that turns `before` (absent for a new item) into `after`: per started KB of the larger. */
export function writeUnits(before: Item | undefined, after: Item, options: { transactional?: boolean } = {}): number {
  const kb = Math.max(1, Math.ceil(Math.max(before ? itemSize(before) : 0, itemSize(after)) / 1024));
  return options.transactional ? 2 * kb : kb;
}
