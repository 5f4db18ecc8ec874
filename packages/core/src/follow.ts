import { InputError } from "./errors.ts";
import { EventLog } from "./event-log.ts";
import type { BuildSummary, LedgerChange } from "./ledger.ts";
import { manifestTrees } from "./manifest.ts";
import type { BlobStore, BuildLedger } from "./ports.ts";
import { ProgressTracker } from "./progress.ts";
import type { BuildEnd, BuildEvent } from "./runtime.ts";
import { sleep } from "./sleep.ts";
import { viewOf } from "./status.ts";
import { readManifest } from "./submit.ts";

/**
 * Following a build on a ledger some other process drives (the deployed functions, `canopy dev`'s emulator):
 * by polling its record, or from the ledger's change feed. Both feed core's ProgressTracker, so the events are
 * the ones the embedded runtime emits. Times are the records' own (created -> written), not this machine's.
 */
export interface FollowPorts {
  ledger: Pick<BuildLedger, "get" | "summary" | "watch">;
  blobs: BlobStore;
}

/** A tracker for a build; its trees come from the caller when it knows them (it submitted the build), else the manifest. */
async function trackerFor(blobs: BlobStore, record: BuildSummary, trees?: (buildId: string) => number | undefined): Promise<ProgressTracker> {
  const treesTotal = trees?.(record.buildId) ?? (await readManifest(blobs, record.buildId).then(manifestTrees, () => undefined));
  return new ProgressTracker(record.buildId, treesTotal, record.createdAt);
}

export interface FollowLedgerOptions {
  signal?: AbortSignal;
  /** Trees of builds the caller already knows (it submitted them): spares a read of the manifest. */
  trees?: (buildId: string) => number | undefined;
}

/** The end of a followed build: its whole record (groves included) read once, as status() would. */
async function endOf(ports: FollowPorts, last: BuildSummary): Promise<BuildEnd> {
  const record = (await ports.ledger.get(last.buildId)) ?? { ...last, landed: [], failed: [], groveStats: {} };
  return { type: "end", buildId: record.buildId, elapsedMs: record.updatedAt - record.createdAt, view: await viewOf(ports.blobs, record) };
}

const notInLedger = (buildId: string) => new InputError(`build ${buildId} is not in the ledger`);

/**
 * Reads the build's counter every `intervalMs` until the build ends or the signal aborts: one small read whatever
 * the build's size (a laptop following a deployed build needs only GetItem), at the price of one event per read,
 * however many groves settled in between. The whole record is read once, at the end.
 */
export async function* pollBuild(ports: FollowPorts, buildId: string, options: FollowLedgerOptions & { intervalMs?: number } = {}): AsyncGenerator<BuildEvent> {
  let tracker: ProgressTracker | undefined;
  while (!options.signal?.aborted) {
    const record = await ports.ledger.summary(buildId);
    if (!record) throw notInLedger(buildId);
    tracker ??= await trackerFor(ports.blobs, record, options.trees);
    yield* tracker.observe(record, record.updatedAt);
    if (tracker.ended) {
      yield await endOf(ports, record);
      return;
    }
    await sleep(options.intervalMs ?? 1000, options.signal);
  }
}

/**
 * Events from the ledger's change feed (a DynamoDB stream): of one build, starting from its current record, or of
 * every build that changes (`buildId` undefined; until the signal aborts). Each build's changes are handled in
 * order. A failure to read a build's manifest or report goes to `onError` (default: the reader throws it).
 */
export async function* followChanges(
  ports: FollowPorts,
  buildId: string | undefined,
  options: FollowLedgerOptions & { onError?: (err: unknown, buildId: string) => void } = {},
): AsyncGenerator<BuildEvent> {
  const log = new EventLog<BuildEvent>();
  const builds = new Map<string, { chain: Promise<void>; tracker?: ProgressTracker }>();
  const onError = options.onError ?? ((err: unknown) => log.fail(err));
  const take = (record: BuildSummary) => {
    const build = builds.get(record.buildId) ?? { chain: Promise.resolve() };
    builds.set(record.buildId, build);
    build.chain = build.chain
      .then(async () => {
        build.tracker ??= await trackerFor(ports.blobs, record, options.trees);
        if (build.tracker.ended) return;
        for (const event of build.tracker.observe(record, record.updatedAt)) log.append(event);
        if (!build.tracker.ended) return;
        log.append(await endOf(ports, record));
        if (buildId !== undefined) log.close();
      })
      .catch((err: unknown) => onError(err, record.buildId));
  };
  if (buildId !== undefined) {
    // The current record goes first, so a feed that replays older writes (a stream read from a little before
    // now) cannot make a finished build look like it is training: the tracker drops what is older.
    const current = await ports.ledger.summary(buildId);
    if (!current) throw notInLedger(buildId);
    take(current);
  }
  const unwatch = ports.ledger.watch((change: LedgerChange) => {
    if (buildId === undefined || change.new.buildId === buildId) take(change.new);
  });
  try {
    yield* log.read(options.signal);
  } finally {
    unwatch();
  }
}
