import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type _Record as StreamRecord,
  type DynamoDBStreamsClient,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { sleep } from "@canopy/core";

export type { StreamRecord };

export interface StreamReaderOptions {
  /** Pause between polls that returned nothing. Default 250 ms (Lambda polls a stream about 4 times a second). */
  pollIntervalMs?: number;
  /**
   * Records created before this epoch ms are skipped. Default: when `start` is called, less `startSlackMs`.
   * Reading begins at TRIM_HORIZON and filters by time rather than asking for LATEST, because a LATEST
   * iterator only exists after a round trip, and writes racing it would be lost.
   */
  since?: number;
  /** Tolerance for clock skew and the stream's second-precision timestamps. Default 5000 ms. */
  startSlackMs?: number;
  /** Called for poll errors; the reader backs off and keeps going. Default: console.error. */
  onError?: (err: unknown) => void;
}

interface ShardState {
  id: string;
  parent?: string;
  iterator?: string;
  lastSequence?: string;
  done: boolean;
}

function isAbort(err: unknown): boolean {
  return (err as { name?: string }).name === "AbortError";
}

/**
 * Polls a DynamoDB stream (DescribeStream / GetShardIterator / GetRecords) and hands each batch of records
 * to a callback, in order per shard, children after their parents. This is what Lambda's event source mapping
 * does for a stream; the ledger's `watch` and the emulator's event-source-mapping build on it.
 */
export class DynamoStreamReader {
  constructor(
    private readonly streams: DynamoDBStreamsClient,
    private readonly streamArn: () => Promise<string>,
    private readonly options: StreamReaderOptions = {},
  ) {}

  /**
   * Starts polling; `onRecords` is awaited before the next poll of that shard (back pressure). Returns a stop
   * function that aborts any request in flight and resolves once the loop has ended.
   */
  start(onRecords: (records: StreamRecord[]) => void | Promise<void>): () => Promise<void> {
    const controller = new AbortController();
    const since = this.options.since ?? Date.now() - (this.options.startSlackMs ?? 5000);
    const loop = this.run(onRecords, since, controller.signal).catch((err) => {
      if (!controller.signal.aborted) (this.options.onError ?? console.error)(err);
    });
    return async () => {
      controller.abort();
      await loop;
    };
  }

  private async run(onRecords: (records: StreamRecord[]) => void | Promise<void>, since: number, signal: AbortSignal) {
    const interval = this.options.pollIntervalMs ?? 250;
    const onError = this.options.onError ?? ((err: unknown) => console.error("DynamoDB stream reader:", err));
    const arn = await this.streamArn();
    const shards = new Map<string, ShardState>();
    let describe = true;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (describe) {
          for (const shard of await this.listShards(arn, signal))
            if (!shards.has(shard.ShardId!)) shards.set(shard.ShardId!, { id: shard.ShardId!, parent: shard.ParentShardId, done: false });
          describe = false;
        }
        let delivered = 0;
        for (const shard of shards.values()) {
          if (shard.done || signal.aborted) continue;
          const parent = shard.parent ? shards.get(shard.parent) : undefined;
          if (parent && !parent.done) continue; // a key's earlier changes live in the parent shard
          const batch = await this.poll(arn, shard, signal);
          if (!batch) continue;
          const fresh = batch.records.filter((r) => (r.dynamodb?.ApproximateCreationDateTime?.getTime() ?? Infinity) >= since);
          if (signal.aborted) return;
          // The iterator only moves on once the batch was handled: a throwing callback gets the batch again.
          if (fresh.length > 0) await onRecords(fresh);
          batch.commit();
          delivered += batch.records.length;
          if (shard.done) describe = true; // a closed shard has children to discover
        }
        failures = 0;
        if (delivered === 0) await sleep(interval, signal);
      } catch (err) {
        if (signal.aborted || isAbort(err)) return;
        onError(err);
        describe = true;
        await sleep(Math.min(interval * 2 ** ++failures, 10_000), signal);
      }
    }
  }

  private async listShards(arn: string, signal: AbortSignal): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const out = await this.streams.send(new DescribeStreamCommand({ StreamArn: arn, ExclusiveStartShardId: start }), { abortSignal: signal });
      shards.push(...(out.StreamDescription?.Shards ?? []));
      start = out.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  private async poll(
    arn: string,
    shard: ShardState,
    signal: AbortSignal,
  ): Promise<{ records: StreamRecord[]; commit: () => void } | undefined> {
    if (!shard.iterator) {
      const out = await this.streams.send(
        new GetShardIteratorCommand({
          StreamArn: arn,
          ShardId: shard.id,
          ...(shard.lastSequence
            ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: shard.lastSequence }
            : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
        { abortSignal: signal },
      );
      shard.iterator = out.ShardIterator;
      if (!shard.iterator) {
        shard.done = true;
        return undefined;
      }
    }
    try {
      const out = await this.streams.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: 1000 }), { abortSignal: signal });
      const records = out.Records ?? [];
      return {
        records,
        commit: () => {
          if (records.length > 0) shard.lastSequence = records[records.length - 1].dynamodb?.SequenceNumber ?? shard.lastSequence;
          shard.iterator = out.NextShardIterator;
          if (!shard.iterator) shard.done = true;
        },
      };
    } catch (err) {
      // Iterators expire after 15 minutes; resume after the last record handled.
      if ((err as { name?: string }).name === "ExpiredIteratorException") {
        shard.iterator = undefined;
        return undefined;
      }
      throw err;
    }
  }
}
