import {
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { DynamoDBStreamsClient } from "@aws-sdk/client-dynamodb-streams";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import {
  buildNotFound,
  LedgerError,
  ledgerRules,
  systemClock,
  type BuildLedger,
  type BuildRecord,
  type BuildResult,
  type Clock,
  type Decision,
  type FailGroveResult,
  type GroveStats,
  type LandResult,
  type LedgerChange,
} from "@canopy/core";
import { clients } from "./clients.ts";
import { isBuildItem, itemToRecord, recordToItem, type Item } from "./ledger-item.ts";
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
  onListenerError?: (err: unknown) => void;
  onStreamError?: (err: unknown) => void;
}

/**
 * A stream record as a ledger change, or undefined for records that are not a build write: REMOVEs, and the
 * key-only INSERT moto emits before the real one when an UpdateItem creates an item (this ledger creates with
 * PutItem, which emits one INSERT). Accepts SDK and Lambda-event records alike.
 */
export function changeFromStreamRecord(record: {
  eventName?: string;
  dynamodb?: { NewImage?: Record<string, unknown>; OldImage?: Record<string, unknown> };
}): LedgerChange | undefined {
  if (record.eventName !== "INSERT" && record.eventName !== "MODIFY") return undefined;
  const image = record.dynamodb?.NewImage as Item | undefined;
  if (!isBuildItem(image)) return undefined;
  const old = record.dynamodb?.OldImage as Item | undefined;
  return { ...(isBuildItem(old) ? { old: itemToRecord(old) } : {}), new: itemToRecord(image) };
}

/** `#name` placeholders for every attribute an expression mentions (DynamoDB rejects unused ones). */
function namesIn(expressions: string[], grove?: number): Record<string, string> {
  const names: Record<string, string> = {};
  for (const match of expressions.join(" ").matchAll(/#(\w+)/g)) names[match[0]] = match[1];
  if ("#grove" in names) names["#grove"] = String(grove);
  return names;
}

interface Write {
  update: string;
  condition: string;
  values: Record<string, unknown>;
  grove?: number;
}

const TRAINING_AND_OPEN =
  "#status = :training AND #total > :grove AND NOT contains(#landed, :grove) AND NOT contains(#failedGroves, :grove)";
const MAX_FAIL_ATTEMPTS = 5;

/**
 * Grove stats live in the build's item (about 165 bytes each) and an item holds at most 400 KB, so builds
 * with more groves are refused at create rather than failing on some later landing.
 */
export const DYNAMO_MAX_GROVES = 2000;

/**
 * The build ledger on one DynamoDB table (partition key `buildId`, S; a NEW_AND_OLD_IMAGES stream for
 * `watch` and the aggregator). Each transition of core's `ledgerRules` is ONE conditional write whose
 * condition is the rule's precondition, so concurrent trainers need no locks: e.g. landing a grove adds it
 * to the `landed` set and decrements `remaining` only if the build is TRAINING and the grove is in neither
 * set, so a duplicate delivery writes nothing and exactly one landing takes `remaining` to 0. When a
 * condition fails, the item as it was (ReturnValuesOnConditionCheckFailure) is run through the same rule to
 * produce the result, and to check that the rule agrees nothing should be written.
 */
export class DynamoLedger implements BuildLedger {
  private readonly clock: Clock;
  private readonly listeners = new Set<(change: LedgerChange) => void>();
  private stopReader?: () => Promise<void>;
  private streamArn?: string;

  constructor(
    readonly table: string,
    private readonly client: DynamoDBClient = clients.dynamodb(),
    private readonly options: DynamoLedgerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.streamArn = options.streamArn;
  }

  async create(record: BuildRecord): Promise<boolean> {
    if (record.total > DYNAMO_MAX_GROVES)
      throw new LedgerError(
        `build ${record.buildId} has ${record.total} groves; the DynamoDB ledger holds at most ${DYNAMO_MAX_GROVES} (raise grove_size)`,
      );
    try {
      // PutItem, not UpdateItem: one INSERT on the stream (see changeFromStreamRecord).
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: recordToItem(record),
          ConditionExpression: "attribute_not_exists(#buildId)",
          ExpressionAttributeNames: { "#buildId": "buildId" },
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw err;
    }
  }

  startTraining(buildId: string): Promise<boolean> {
    const now = this.clock.now();
    return this.apply(
      buildId,
      { update: "SET #status = :training, #updatedAt = :now", condition: "#status = :pending", values: { ":training": "TRAINING", ":pending": "PENDING", ":now": now } },
      () => true,
      (r) => ledgerRules.startTraining(r, now),
    );
  }

  landGrove(buildId: string, grove: number, stats: GroveStats): Promise<LandResult> {
    checkGroveNumber(grove);
    const now = this.clock.now();
    return this.apply(
      buildId,
      {
        update:
          "ADD #landed :groveSet SET #remaining = #remaining - :one, #groveStats.#grove = :stats, #lastLandedAt = :now, #updatedAt = :now",
        condition: TRAINING_AND_OPEN,
        values: { ":groveSet": new Set([grove]), ":grove": grove, ":one": 1, ":stats": stats, ":now": now, ":training": "TRAINING" },
        grove,
      },
      (attrs) => ({ landed: true, remaining: attrs.remaining as number }),
      (r) => ledgerRules.landGrove(r, grove, stats, now),
    );
  }

  /**
   * Within the tolerance this is one write conditioned on `failedCount < tolerated`. The failure that goes
   * over it must also set FAILED and a reason naming the count, so that write is conditioned on the exact
   * `failedCount` the reason was computed from (retried if another failure landed in between).
   */
  async failGrove(buildId: string, grove: number, error: string): Promise<FailGroveResult> {
    checkGroveNumber(grove);
    const record =
      "ADD #failedGroves :groveSet SET #remaining = #remaining - :one, #failedCount = #failedCount + :one, #failures.#grove = :error, #updatedAt = :now";
    let over: { count: number; reason: string } | undefined;
    for (let attempt = 0; attempt < MAX_FAIL_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      const base = { ":groveSet": new Set([grove]), ":grove": grove, ":one": 1, ":error": error, ":now": now, ":training": "TRAINING" };
      const write: Write = over
        ? {
            update: `${record}, #status = :failed, #reason = :reason`,
            condition: `${TRAINING_AND_OPEN} AND #failedCount = :count`,
            values: { ...base, ":failed": "FAILED", ":reason": over.reason, ":count": over.count },
            grove,
          }
        : { update: record, condition: `${TRAINING_AND_OPEN} AND #failedCount < #tolerated`, values: base, grove };
      const buildFailed = over !== undefined;
      let retry = false;
      const result = await this.apply(
        buildId,
        write,
        (attrs): FailGroveResult => ({ recorded: true, remaining: attrs.remaining as number, buildFailed }),
        (r) => {
          const decision = ledgerRules.failGrove(r, grove, error, now);
          if (!decision.next) return decision;
          // The rule would write: the condition failed only on the tolerance branch. Take the other one.
          retry = true;
          over = decision.result.buildFailed ? { count: r.failed.length, reason: decision.next.reason ?? error } : undefined;
          return { result: decision.result };
        },
      );
      if (!retry) return result;
    }
    throw new AwsBusyError(`DynamoLedger.failGrove(${buildId}, ${grove}): gave up after ${MAX_FAIL_ATTEMPTS} conflicting writes`);
  }

  claimAggregation(buildId: string): Promise<boolean> {
    const now = this.clock.now();
    return this.apply(
      buildId,
      {
        update: "SET #status = :aggregating, #updatedAt = :now",
        condition: "#status = :training AND #remaining = :zero",
        values: { ":aggregating": "AGGREGATING", ":training": "TRAINING", ":zero": 0, ":now": now },
      },
      () => true,
      (r) => ledgerRules.claimAggregation(r, now),
    );
  }

  reopenAggregation(buildId: string): Promise<boolean> {
    const now = this.clock.now();
    return this.apply(
      buildId,
      {
        update: "SET #status = :training, #updatedAt = :now",
        condition: "#status = :aggregating",
        values: { ":training": "TRAINING", ":aggregating": "AGGREGATING", ":now": now },
      },
      () => true,
      (r) => ledgerRules.reopenAggregation(r, now),
    );
  }

  complete(buildId: string, result: BuildResult): Promise<boolean> {
    const now = this.clock.now();
    return this.apply(
      buildId,
      {
        update: "SET #status = :completed, #result = :result, #updatedAt = :now",
        condition: "#status = :aggregating",
        values: { ":completed": "COMPLETED", ":aggregating": "AGGREGATING", ":result": result, ":now": now },
      },
      () => true,
      (r) => ledgerRules.complete(r, result, now),
    );
  }

  fail(buildId: string, reason: string): Promise<boolean> {
    const now = this.clock.now();
    return this.apply(
      buildId,
      {
        update: "SET #status = :failed, #reason = :reason, #updatedAt = :now",
        condition: "#status IN (:pending, :training, :aggregating)",
        values: { ":failed": "FAILED", ":reason": reason, ":pending": "PENDING", ":training": "TRAINING", ":aggregating": "AGGREGATING", ":now": now },
      },
      () => true,
      (r) => ledgerRules.fail(r, reason, now),
    );
  }

  async get(buildId: string): Promise<BuildRecord | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { buildId: { S: buildId } }, ConsistentRead: true }));
    return out.Item ? itemToRecord(out.Item) : undefined;
  }

  /**
   * Reads the table's stream (polling, like Lambda's event source mapping) and calls listeners with each
   * build write, in order per build. Starts with the first listener and stops with the last; changes from up
   * to a few seconds before the first subscription may be delivered too.
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
   * One conditional UpdateItem. On success `written` maps the updated attributes to the result; if the
   * condition fails, `decline` applies the rule to the item as it was, which must agree that nothing is
   * written (failGrove's tolerance branch is the one place that may return a result anyway: it retries).
   */
  private async apply<R>(
    buildId: string,
    write: Write,
    written: (attrs: Record<string, unknown>) => R,
    decline: (record: BuildRecord) => Decision<R>,
  ): Promise<R> {
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { buildId: { S: buildId } },
          UpdateExpression: write.update,
          ConditionExpression: write.condition,
          ExpressionAttributeNames: namesIn([write.update, write.condition], write.grove),
          ExpressionAttributeValues: marshall(write.values, { removeUndefinedValues: true }),
          ReturnValues: "UPDATED_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return written(unmarshall(out.Attributes ?? {}));
    } catch (err) {
      if ((err as { name?: string }).name !== "ConditionalCheckFailedException") throw err;
      const item = (err as { Item?: Item }).Item;
      if (!item || Object.keys(item).length === 0) throw buildNotFound(buildId);
      const decision = decline(itemToRecord(item));
      if (decision.next)
        throw new AwsInternalError(`DynamoLedger: the condition on ${buildId} failed but ledgerRules would write; the two disagree`);
      return decision.result;
    }
  }
}

function checkGroveNumber(grove: number): void {
  // Ranges above the build's total are checked by the condition (and reported by ledgerRules).
  if (!Number.isInteger(grove) || grove < 0) throw new LedgerError(`grove must be a non-negative integer; got ${grove}`);
}
