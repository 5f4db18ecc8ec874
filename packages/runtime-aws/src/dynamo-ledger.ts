import {
  BatchGetItemCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type TransactWriteItem,
} from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { marshall } from "@aws-sdk/util-dynamodb";
import {
  buildNotFound,
  checkNewRecord,
  LedgerError,
  ledgerRules,
  recordOf,
  sleep,
  summaryOf,
  systemClock,
  TERMINAL_STATUSES,
  type BuildLedger,
  type BuildRecord,
  type BuildResult,
  type BuildSummary,
  type Clock,
  type Decision,
  type FailGroveResult,
  type GroveStats,
  type LandResult,
  type LedgerChange,
  type SettledGrove,
} from "@canopy/core";
import { readSetting } from "./settings.ts";
import { clients } from "./clients.ts";
import {
  entryToItem,
  groveKey,
  isBuildItem,
  itemToEntry,
  itemToSummary,
  legacyEntries,
  OPEN_BUILDS_INDEX,
  summaryToItem,
  TTL_ATTRIBUTE,
  type Item,
} from "./ledger-item.ts";
import { DynamoStreamReader, type StreamRecord } from "./stream-reader.ts";
import { AwsBusyError, AwsInternalError, AwsSetupError } from "./errors.ts";

export interface DynamoLedgerOptions {
  clock?: Clock;
  /** Streams client for `watch`. Default: the shared one from clients.ts. */
  streams?: DynamoDBStreamsClient;
  /** The table's stream ARN for `watch`. Default: DescribeTable's LatestStreamArn, looked up on first watch. */
  streamArn?: string;
  /** Stream poll interval for `watch`. Default 250 ms. */
  pollIntervalMs?: number;
  /** Days a finished build's counter, and a grove's entry, are kept before DynamoDB's TTL may delete them. Default: CANOPY_LEDGER_RETENTION_DAYS (90). */
  retentionDays?: number;
  /** Attempts of one transition when other writers keep changing the build first. Default 12. */
  maxAttempts?: number;
  onListenerError?: (err: unknown) => void;
  onStreamError?: (err: unknown) => void;
}

/**
 * A stream record as a ledger change, or undefined for records that are not a write of a build's counter: grove
 * entries, aliases, REMOVEs (a TTL deletion), and the key-only INSERT moto emits before the real one when an
 * UpdateItem creates an item. Accepts SDK and Lambda-event records alike.
 */
export function changeFromStreamRecord(record: {
  eventName?: string;
  dynamodb?: { NewImage?: Record<string, unknown>; OldImage?: Record<string, unknown> };
}): LedgerChange | undefined {
  if (record.eventName !== "INSERT" && record.eventName !== "MODIFY") return undefined;
  const image = record.dynamodb?.NewImage as Item | undefined;
  if (!isBuildItem(image)) return undefined;
  const old = record.dynamodb?.OldImage as Item | undefined;
  return { ...(isBuildItem(old) ? { old: itemToSummary(old) } : {}), new: itemToSummary(image) };
}

/**
 * Builds of more groves are refused at create: the aggregator reads every grove twice within its time limit, and
 * a record's reads grow with its groves. (The items themselves no longer limit it: a counter stays small.)
 */
export const DYNAMO_MAX_GROVES = 10_000;

/** BatchGetItem's limit. */
const BATCH_KEYS = 100;

const isCancelled = (err: unknown) => (err as { name?: string }).name === "TransactionCanceledException";
const isConditionFailed = (err: unknown) => (err as { name?: string }).name === "ConditionalCheckFailedException";
const isConflict = (err: unknown) => (err as { name?: string }).name === "TransactionConflictException";

type Reason = { Code?: string; Item?: Record<string, AttributeValue> };

/**
 * The build ledger on one DynamoDB table: per build a counter item of constant size and one item per settled grove
 * (see ledger-item.ts), so a landing writes the same few hundred bytes whether it is the first grove or the
 * thousandth (a transaction: 2 write units per KB of each item, 4 in all), where one item holding every grove cost
 * write units growing with the groves landed.
 *
 * Every transition applies core's `ledgerRules` to the counter as read (strongly consistent), and writes the result
 * conditioned on the counter still being in that state (its `status` and `remaining`: every settlement decrements
 * remaining, every other transition changes status); a landing or a failure also puts the grove's entry, in the
 * same transaction, conditioned on there being none. So exactly one landing takes `remaining` to 0 and sees it, a
 * duplicate delivery writes nothing (the entry exists: the transaction is cancelled and the rule says so), and a
 * writer that raced another reads again and decides again. That MODIFY of the counter (NewImage `remaining` 0,
 * `status` TRAINING) is what AGGREGATION_TRIGGER_FILTER matches; entries never match it.
 *
 * This is the fan-in of counted members, written once: a study counting its builds is another counter and other
 * entries in the same shape (`apply` takes any rule of ledgerRules' form).
 */
export class DynamoLedger implements BuildLedger {
  private readonly clock: Clock;
  private readonly listeners = new Set<(change: LedgerChange) => void>();
  private readonly retentionSeconds: number;
  private readonly maxAttempts: number;
  private stopReader?: () => Promise<void>;
  private streamArn?: string;

  constructor(
    readonly table: string,
    private readonly client: DynamoDBClient = clients.dynamodb(),
    private readonly options: DynamoLedgerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.streamArn = options.streamArn;
    this.retentionSeconds = (options.retentionDays ?? readSetting(process.env, "CANOPY_LEDGER_RETENTION_DAYS")) * 86_400;
    this.maxAttempts = options.maxAttempts ?? 12;
  }

  async create(record: BuildRecord): Promise<boolean> {
    checkNewRecord(record);
    if (record.total > DYNAMO_MAX_GROVES)
      throw new LedgerError(`build ${record.buildId} has ${record.total} groves; a build on AWS has at most ${DYNAMO_MAX_GROVES} (raise grove_size)`);
    try {
      // PutItem, not UpdateItem: one INSERT on the stream (see changeFromStreamRecord).
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: summaryToItem(record, { open: true }),
          ConditionExpression: "attribute_not_exists(#buildId)",
          ExpressionAttributeNames: { "#buildId": "buildId" },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  startTraining(buildId: string): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.startTraining(s, now));
  }

  async landGrove(buildId: string, grove: number, stats: GroveStats): Promise<LandResult> {
    checkGroveNumber(grove);
    return this.apply(buildId, (s, now, entry) => ledgerRules.landGrove(s, entry, grove, stats, now), grove);
  }

  async failGrove(buildId: string, grove: number, error: string): Promise<FailGroveResult> {
    checkGroveNumber(grove);
    return this.apply(buildId, (s, now, entry) => ledgerRules.failGrove(s, entry, grove, error, now), grove);
  }

  claimAggregation(buildId: string): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.claimAggregation(s, now));
  }

  reopenAggregation(buildId: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.reopenAggregation(s, now, options.claim));
  }

  redriveAggregation(buildId: string): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.redriveAggregation(s, now));
  }

  recordRequeue(buildId: string): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.recordRequeue(s, now));
  }

  complete(buildId: string, result: BuildResult): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.complete(s, result, now));
  }

  fail(buildId: string, reason: string, options: { claim?: number } = {}): Promise<boolean> {
    return this.apply(buildId, (s, now) => ledgerRules.fail(s, reason, now, options.claim));
  }

  async summary(buildId: string): Promise<BuildSummary | undefined> {
    const item = await this.counterItem(buildId);
    return item && itemToSummary(item);
  }

  async grove(buildId: string, grove: number): Promise<SettledGrove | undefined> {
    if (!Number.isInteger(grove) || grove < 0 || grove > 99_999) return undefined;
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { buildId: { S: groveKey(buildId, grove) } }, ConsistentRead: true }));
    return out.Item ? itemToEntry(out.Item) : undefined;
  }

  /**
   * The counter and every grove's entry: BatchGetItem of the entries' keys (groves 0..total-1, 100 keys a request,
   * strongly consistent), so reads grow with the build (about one read unit per grove). Progress and sweeping read
   * the counter alone (`summary`).
   */
  async get(buildId: string): Promise<BuildRecord | undefined> {
    const item = await this.counterItem(buildId);
    if (!item) return undefined;
    const summary = itemToSummary(item);
    const legacy = legacyEntries(item);
    if (legacy.length > 0) return recordOf(summary, legacy);
    const keys = Array.from({ length: summary.total }, (_, g) => groveKey(buildId, g));
    const entries: SettledGrove[] = [];
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += BATCH_KEYS) batches.push(keys.slice(i, i + BATCH_KEYS));
    for (let i = 0; i < batches.length; i += 4)
      for (const got of await Promise.all(batches.slice(i, i + 4).map((batch) => this.batchGet(batch)))) entries.push(...got.map(itemToEntry));
    return recordOf(summary, entries);
  }

  /**
   * Reads the table's stream (polling, like Lambda's event source mapping) and calls listeners with each write of
   * a build's counter, in order per build. Starts with the first listener and stops with the last; changes from
   * up to a few seconds before the first subscription may be delivered too.
   */
  watch(listener: (change: LedgerChange) => void): () => void {
    this.listeners.add(listener);
    if (!this.stopReader) {
      const reader = new DynamoStreamReader(this.options.streams ?? clients.dynamodbStreams(), () => this.resolveStreamArn(), {
        pollIntervalMs: this.options.pollIntervalMs,
        onError: this.options.onStreamError,
      });
      this.stopReader = reader.start((records) => this.deliver(records));
    }
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      const stop = this.stopReader;
      this.stopReader = undefined;
      void stop?.();
    };
  }

  /** Stops the stream reader, if running, and waits for it. */
  async close(): Promise<void> {
    this.listeners.clear();
    const stop = this.stopReader;
    this.stopReader = undefined;
    await stop?.();
  }

  private async counterItem(buildId: string): Promise<Item | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { buildId: { S: buildId } }, ConsistentRead: true }));
    return out.Item;
  }

  private async batchGet(keys: string[]): Promise<Item[]> {
    const out: Item[] = [];
    let pending: Record<string, AttributeValue>[] = keys.map((k) => ({ buildId: { S: k } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) await sleep(Math.min(50 * 2 ** attempt, 2000) * Math.random());
      if (attempt > 10) throw new AwsBusyError(`DynamoLedger: ${pending.length} grove entries still unread after ${attempt} BatchGetItem calls`);
      const res = await this.client.send(new BatchGetItemCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }));
      out.push(...((res.Responses?.[this.table] ?? []) as Item[]));
      pending = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, AttributeValue>[];
    }
    return out;
  }

  private deliver(records: StreamRecord[]): void {
    for (const record of records) {
      const change = changeFromStreamRecord(record);
      if (!change) continue;
      for (const listener of [...this.listeners]) {
        try {
          listener(change);
        } catch (err) {
          (this.options.onListenerError ?? ((e) => console.error("ledger listener failed:", e)))(err);
        }
      }
    }
  }

  private async resolveStreamArn(): Promise<string> {
    if (this.streamArn) return this.streamArn;
    const out = await this.client.send(new DescribeTableCommand({ TableName: this.table }));
    const arn = out.Table?.LatestStreamArn;
    if (!arn || out.Table?.StreamSpecification?.StreamEnabled === false)
      throw new AwsSetupError(`table ${this.table} has no stream: enable one with NEW_AND_OLD_IMAGES to watch the ledger`);
    this.streamArn = arn;
    return arn;
  }

  /**
   * One transition: read the counter, decide with the rule, write the decision conditioned on the counter's status
   * and remaining being what was read (and, with a grove, on the grove having no entry yet). A writer that lost a
   * race reads again; a grove that has an entry is handed to the rule, which says what a duplicate returns.
   */
  private async apply<R>(
    buildId: string,
    rule: (summary: BuildSummary, now: number, entry: SettledGrove | undefined) => Decision<R>,
    grove?: number,
  ): Promise<R> {
    let entry: SettledGrove | undefined;
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) await sleep(Math.min(20 * 2 ** attempt, 1000) * Math.random());
      const item = await this.counterItem(buildId);
      if (!item) throw buildNotFound(buildId);
      const current = itemToSummary(item);
      if (legacyEntries(item).length > 0 && !TERMINAL_STATUSES.includes(current.status))
        throw new AwsInternalError(`build ${buildId} was recorded by an earlier Canopy (every grove in one item); finish it with that version`);
      const now = this.clock.now();
      const decision = rule(current, now, entry);
      if (!decision.next) return decision.result;
      try {
        await this.write(current, decision, now);
        return decision.result;
      } catch (err) {
        if (isConditionFailed(err) || isConflict(err)) continue;
        if (!isCancelled(err)) throw err;
        const reasons = ((err as { CancellationReasons?: Reason[] }).CancellationReasons ?? []) as Reason[];
        const [entryReason] = reasons;
        if (grove !== undefined && entryReason?.Code === "ConditionalCheckFailed") {
          // The grove already has an entry: decide again knowing it (the rule writes nothing for a settled grove).
          entry = entryReason.Item && Object.keys(entryReason.Item).length > 0 ? itemToEntry(entryReason.Item) : await this.grove(buildId, grove);
          if (!entry) continue;
          const again = rule(current, now, entry);
          if (again.next) throw new AwsInternalError(`DynamoLedger: grove ${grove} of ${buildId} has an entry but ledgerRules would write one`);
          return again.result;
        }
        // The counter changed since it was read, or another transaction held it: read again.
      }
    }
    throw new AwsBusyError(`DynamoLedger: ${buildId} kept changing under ${this.maxAttempts} attempts to write it; try again`);
  }

  /** The counter's changed attributes (and the grove's entry), conditioned on the counter as read. */
  private async write(current: BuildSummary, decision: Decision<unknown>, now: number): Promise<void> {
    const next = decision.next!;
    const names: Record<string, string> = { "#status": "status", "#remaining": "remaining" };
    const values: Record<string, unknown> = { ":seenStatus": current.status, ":seenRemaining": current.remaining };
    const sets: string[] = [];
    const removes: string[] = [];
    const before = summaryOf(current) as unknown as Record<string, unknown>;
    const after = summaryOf(next) as unknown as Record<string, unknown>;
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      if (JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
      names[`#${key}`] = key;
      if (after[key] === undefined) removes.push(`#${key}`);
      else {
        values[`:${key}`] = after[key];
        sets.push(`#${key} = :${key}`);
      }
    }
    if (TERMINAL_STATUSES.includes(next.status) && !TERMINAL_STATUSES.includes(current.status)) {
      // Finished: out of the open-builds index, and kept for the retention period.
      names[`#${OPEN_BUILDS_INDEX.hashKey}`] = OPEN_BUILDS_INDEX.hashKey;
      removes.push(`#${OPEN_BUILDS_INDEX.hashKey}`);
      names[`#${TTL_ATTRIBUTE}`] = TTL_ATTRIBUTE;
      values[`:${TTL_ATTRIBUTE}`] = this.expiresAt(now);
      sets.push(`#${TTL_ATTRIBUTE} = :${TTL_ATTRIBUTE}`);
    }
    const update = `${sets.length ? `SET ${sets.join(", ")}` : ""}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`.trim();
    const counterUpdate = {
      TableName: this.table,
      Key: { buildId: { S: current.buildId } },
      UpdateExpression: update,
      ConditionExpression: "#status = :seenStatus AND #remaining = :seenRemaining",
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values, { removeUndefinedValues: true, convertClassInstanceToMap: true }),
    };
    if (!decision.settle) {
      await this.client.send(new UpdateItemCommand(counterUpdate));
      return;
    }
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: this.table,
          Item: entryToItem(current.buildId, decision.settle, this.expiresAt(now)),
          ConditionExpression: "attribute_not_exists(#buildId)",
          ExpressionAttributeNames: { "#buildId": "buildId" },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      { Update: counterUpdate },
    ];
    await this.client.send(new TransactWriteItemsCommand({ TransactItems: items }));
  }

  private expiresAt(now: number): number {
    return Math.floor(now / 1000) + this.retentionSeconds;
  }
}

function checkGroveNumber(grove: number): void {
  // Ranges above the build's total are checked by ledgerRules on the counter as read.
  if (!Number.isInteger(grove) || grove < 0 || grove > 99_999) throw new LedgerError(`grove must be an integer from 0 to 99999; got ${grove}`);
}
