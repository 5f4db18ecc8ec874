import { InputError } from "./errors.ts";
import type { GroveStats } from "./ledger.ts";

/** What costing needs of a grove: its number and the stats its trainer measured (a report row fits). */
/** A grove as the cost model sees it: its times and sizes (its digest does not cost anything). */
export type CostedGrove = Omit<GroveStats, "digest"> & { grove: number };

/**
 * Unit prices in USD. Defaults: AWS public on-demand prices for us-east-1 (x86), as listed on the pricing pages
 * of Lambda, SQS, DynamoDB, S3 and SNS in 2025, free tiers ignored:
 * - Lambda: $0.0000166667 per GB-second, $0.20 per million requests (aws.amazon.com/lambda/pricing).
 * - SQS standard queues: $0.40 per million requests (aws.amazon.com/sqs/pricing).
 * - DynamoDB on-demand: $0.625 per million write request units and $0.125 per million read request units
 *   (aws.amazon.com/dynamodb/pricing/on-demand; halved in November 2024 from $1.25 / $0.25).
 * - S3 Standard: $0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs (aws.amazon.com/s3/pricing).
 * - SNS standard topics: $0.50 per million publishes (aws.amazon.com/sns/pricing).
 * - Lambda provisioned mode for an SQS event source mapping: $0.00925 per event poller unit (EPU) hour, one EPU per
 *   poller (aws.amazon.com/lambda/pricing, "Provisioned Mode for SQS ESM"; see the README's "Burst start").
 * Pass your own to price another region, architecture or a later price list.
 */
export interface Prices {
  lambdaGbSecond: number;
  lambdaRequest: number;
  sqsRequest: number;
  dynamoWrite: number;
  dynamoRead: number;
  s3Put: number;
  s3Get: number;
  snsPublish: number;
  /** One provisioned event poller of an SQS mapping for an hour (an EPU-hour). */
  eventPollerHour: number;
}

export const DEFAULT_PRICES: Prices = {
  lambdaGbSecond: 0.0000166667,
  lambdaRequest: 0.2 / 1e6,
  sqsRequest: 0.4 / 1e6,
  dynamoWrite: 0.625 / 1e6,
  dynamoRead: 0.125 / 1e6,
  s3Put: 0.005 / 1e3,
  s3Get: 0.0004 / 1e3,
  snsPublish: 0.5 / 1e6,
  eventPollerHour: 0.00925,
};

/** Where one grove's time went, in seconds, and what its share of the trainer invocation is billed. */
export interface GroveCost {
  grove: number;
  /** Enqueued -> trainer started. */
  queueWaitS: number;
  /** Ledger check and dataset pack (cache or blob store). */
  dataLoadS: number;
  /** Training the grove's trees. */
  computeS: number;
  /** Storing the grove and landing it. */
  ioS: number;
  /** Lambda memory the trainer ran with; absent when the runtime did not say (not on Lambda). */
  memoryMb?: number;
  /** Started -> landed, rounded up to Lambda's 1 ms billing unit, times memory; 0 without a memory size. */
  billedGbS: number;
}

/** Requests a build makes, estimated from its shape: one delivery per grove, one invocation per task. */
export interface RequestCounts {
  lambda: number;
  sqs: number;
  dynamoWrites: number;
  dynamoReads: number;
  s3Puts: number;
  s3Gets: number;
  snsPublishes: number;
}

export interface BuildCost {
  groves: GroveCost[];
  totals: { queueWaitS: number; dataLoadS: number; computeS: number; ioS: number; billedGbS: number };
  requests: RequestCounts;
  /** Estimated USD, per service and in total. */
  usd: { lambdaCompute: number; lambdaRequests: number; sqs: number; dynamodb: number; s3: number; sns: number; total: number };
  prices: Prices;
}

export interface CostOptions {
  prices?: Partial<Prices>;
  /** Groves given up on (they cost deliveries and invocations too, but their time is not known). */
  failedGroves?: number;
  /** The aggregator's own run: merge, evaluate, store; billed like a grove when its memory is known. */
  aggregator?: { ms: number; memoryMb?: number };
  /** Files the aggregator stores: the model and report.json (default 2), plus report.html when it renders one. */
  artifacts?: number;
  /**
   * Groves an extension copied from its parent instead of training them: one S3 GET, one PUT and one ledger write
   * each, no Lambda or SQS. Pass only the trained groves as `groves`.
   */
  copiedGroves?: number;
}

/** Billed GB-seconds of a run of `ms` milliseconds at `memoryMb` (Lambda bills whole milliseconds). */
export function billedGbSeconds(ms: number, memoryMb: number | undefined): number {
  if (!memoryMb || memoryMb <= 0) return 0;
  return (Math.ceil(Math.max(0, ms)) / 1000) * (memoryMb / 1024);
}

const seconds = (ms: number) => Math.max(0, ms) / 1000;

export function groveCost(g: CostedGrove): GroveCost {
  return {
    grove: g.grove,
    queueWaitS: seconds(g.startedAt - g.queuedAt),
    dataLoadS: seconds(g.loadedAt - g.startedAt),
    computeS: seconds(g.trainedAt - g.loadedAt),
    ioS: seconds(g.landedAt - g.trainedAt),
    ...(g.memoryMb !== undefined ? { memoryMb: g.memoryMb } : {}),
    billedGbS: billedGbSeconds(g.landedAt - g.startedAt, g.memoryMb),
  };
}

/**
 * Request counts for a build of `landed` + `failed` groves. Assumptions (a lower bound for a healthy run):
 * SQS: 1 SendMessageBatch per 10 tasks, 1 receive and 1 delete per task. DynamoDB: create, start, one landing
 * or failure per grove, claim, complete (writes); one read per trainer and two by the aggregator. S3: spec,
 * pack (counted as uploaded), one grove per landing, the aggregator's `artifacts` (model, report.json and
 * report.html when rendered) (PUTs); the pack per trainer that did
 * not have it cached, the manifest, every grove and the pack again in the aggregator (GETs). One SNS publish.
 * An extension's `copied` groves add a GET of the parent's grove, a PUT of the copy, a landing and the aggregator's
 * GET of it each. Retries and redeliveries add to all of these.
 */
export function requestCounts(groves: CostedGrove[], failed = 0, artifacts = 2, copied = 0): RequestCounts {
  const tasks = groves.length + failed;
  const uncached = groves.filter((g) => !g.packCached).length;
  return {
    lambda: tasks + 1,
    sqs: Math.ceil(tasks / 10) + 2 * tasks,
    dynamoWrites: tasks + copied + 4,
    dynamoReads: tasks + 2,
    s3Puts: 2 + groves.length + copied + artifacts,
    s3Gets: uncached + 1 + groves.length + 2 * copied + 1,
    snsPublishes: 1,
  };
}

/** Time and cost accounting of a finished build, from the groves' measured stats. Pure. */
export function buildCost(groves: CostedGrove[], options: CostOptions = {}): BuildCost {
  const prices: Prices = { ...DEFAULT_PRICES, ...options.prices };
  const perGrove = groves.map(groveCost);
  const sum = (pick: (g: GroveCost) => number) => perGrove.reduce((s, g) => s + pick(g), 0);
  const aggregatorGbS = options.aggregator ? billedGbSeconds(options.aggregator.ms, options.aggregator.memoryMb) : 0;
  const totals = {
    queueWaitS: sum((g) => g.queueWaitS),
    dataLoadS: sum((g) => g.dataLoadS),
    computeS: sum((g) => g.computeS),
    ioS: sum((g) => g.ioS),
    billedGbS: sum((g) => g.billedGbS) + aggregatorGbS,
  };
  const requests = requestCounts(groves, options.failedGroves ?? 0, options.artifacts ?? 2, options.copiedGroves ?? 0);
  const usd = {
    lambdaCompute: totals.billedGbS * prices.lambdaGbSecond,
    lambdaRequests: requests.lambda * prices.lambdaRequest,
    sqs: requests.sqs * prices.sqsRequest,
    dynamodb: requests.dynamoWrites * prices.dynamoWrite + requests.dynamoReads * prices.dynamoRead,
    s3: requests.s3Puts * prices.s3Put + requests.s3Gets * prices.s3Get,
    sns: requests.snsPublishes * prices.snsPublish,
    total: 0,
  };
  usd.total = usd.lambdaCompute + usd.lambdaRequests + usd.sqs + usd.dynamodb + usd.s3 + usd.sns;
  return { groves: perGrove, totals, requests, usd, prices };
}

/**
 * Prices from the environment, for handlers: CANOPY_PRICES is a JSON object of `Prices` fields (partial).
 * Throws one line on anything else, so a typo does not silently price at the defaults.
 */
export function pricesFromEnv(env: Record<string, string | undefined>): Partial<Prices> {
  const text = env.CANOPY_PRICES;
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InputError("CANOPY_PRICES is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InputError("CANOPY_PRICES must be a JSON object");
  const out: Partial<Prices> = {};
  for (const [key, price] of Object.entries(value)) {
    if (!(key in DEFAULT_PRICES)) throw new InputError(`CANOPY_PRICES: unknown price ${JSON.stringify(key)} (known: ${Object.keys(DEFAULT_PRICES).join(", ")})`);
    if (typeof price !== "number" || !Number.isFinite(price) || price < 0) throw new InputError(`CANOPY_PRICES: ${key} must be a number >= 0`);
    out[key as keyof Prices] = price;
  }
  return out;
}
