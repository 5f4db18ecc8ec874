import { buildCost, DEFAULT_PRICES, type CostedGrove, type Prices } from "./cost.ts";
import { curveTrees } from "./curve.ts";
import { planGroves } from "./plan.ts";

/**
 * What a build would take on AWS before it runs: a discrete-event simulation of the fan-out, priced with the cost
 * model (cost.ts). Submission (manifest, ledger record), the grove tasks sent in batches, the SQS event source
 * mapping invoking trainers under its concurrency limit (ramping in its default mode, from ready pollers in
 * provisioned mode, fixed in the emulator), new trainer containers starting cold and reading the pack once, warm ones
 * reusing it, each grove trained, stored and landed, the stream triggering the aggregator, which loads the groves and
 * the pack, merges, evaluates, writes model and reports, completes and publishes. Pure and deterministic: the work
 * comes in measured (`WorkProfile`), everything else is a named assumption below.
 */

/** Every assumption of the model, in one place. Times in seconds, sizes in bytes. */
export interface FanoutAssumptions {
  /** Default mode: concurrent batches when messages first appear ("five batches at a time", Lambda's SQS scaling docs). */
  defaultInitialConcurrency: number;
  /** Default mode: concurrent invocations added per minute while messages wait ("up to 300 ... a minute", same docs). */
  defaultRampPerMinute: number;
  /** Default mode: the most concurrent invocations of one mapping ("up to a maximum of 1,250", same docs). */
  defaultMaxConcurrency: number;
  /** Provisioned mode: invocations one event poller runs at once ("up to 10 concurrent invokes", with-sqs docs). */
  invocationsPerPoller: number;
  /** Provisioned mode: concurrent invocations added per minute ("up to 1,000 concurrency per minute", same docs). */
  provisionedRampPerMinute: number;
  /** The account's Lambda concurrency in the region (AWS's default quota), shared by every function. */
  accountConcurrency: number;
  /** A task's message visible -> its trainer's handler starts (the pollers long-poll; assumed). */
  deliveryS: number;
  /** A handler returned -> its slot takes the next task (message deleted, next receive; assumed). */
  releaseS: number;
  /** A new trainer container's init (Node.js 22, ~1.2 MB bundle; assumed). Billed: Lambda bills INIT since August 2025. */
  coldStartS: number;
  /** The aggregator's init (its zip also carries the report's chart library; assumed). */
  aggregatorColdStartS: number;
  /** One DynamoDB GetItem/PutItem/UpdateItem ("single-digit milliseconds", DynamoDB docs; assumed 10 ms). */
  dynamoRequestS: number;
  /** An S3 request's fixed part: first byte of a GET, the answer to a PUT (assumed). */
  s3RequestS: number;
  /** One GET stream into a function, bytes per second (assumed). */
  s3ReadBytesPerS: number;
  /** One PUT from a function, bytes per second (assumed). */
  s3WriteBytesPerS: number;
  /** One SendMessageBatch of 10 tasks (the submitter keeps SQS_SEND_IN_FLIGHT of them in flight; assumed). */
  sqsSendBatchS: number;
  /** The landing that takes `remaining` to 0 -> the aggregator invoked through the table's stream (assumed). */
  streamTriggerS: number;
  /** One SNS Publish (assumed). */
  snsPublishS: number;
  /** report.json and report.html together (a digits build's measured 0.55-0.77 MB, most of it the inlined chart library). */
  reportBytes: number;
}

/** The assumptions for AWS (us-east-1), the defaults of `estimateFanout`. */
export const AWS_ASSUMPTIONS: FanoutAssumptions = {
  defaultInitialConcurrency: 5,
  defaultRampPerMinute: 300,
  defaultMaxConcurrency: 1250,
  invocationsPerPoller: 10,
  provisionedRampPerMinute: 1000,
  accountConcurrency: 1000,
  deliveryS: 0.05,
  releaseS: 0.02,
  coldStartS: 0.5,
  aggregatorColdStartS: 0.7,
  dynamoRequestS: 0.01,
  s3RequestS: 0.03,
  s3ReadBytesPerS: 80e6,
  s3WriteBytesPerS: 40e6,
  sqsSendBatchS: 0.02,
  streamTriggerS: 0.5,
  snsPublishS: 0.03,
  reportBytes: 600_000,
};

/** SendMessageBatch calls the submitter keeps in flight (SqsTaskQueue's default concurrency). */
export const SQS_SEND_IN_FLIGHT = 4;
/** Lambda memory at which a function has one full vCPU (CPU is allotted in proportion to memory). */
export const FULL_VCPU_MB = 1769;
/** Hours in a month, for standing costs (AWS's pricing examples use 730). */
export const HOURS_PER_MONTH = 730;

/**
 * How much slower single-threaded work runs at `memoryMb` than on one full vCPU: 1,769 / memory below 1,769 MB, 1
 * above (more memory buys a second vCPU, which one thread cannot use).
 */
export function cpuSlowdown(memoryMb: number): number {
  return Math.max(1, FULL_VCPU_MB / memoryMb);
}

/** How the trainer's event source mapping scales. */
export type MappingScaling =
  | { mode: "default"; maxConcurrency: number }
  | { mode: "provisioned"; minPollers: number; maxPollers: number }
  /** A fixed number of invocations at once from the start (the emulator's pollers). */
  | { mode: "fixed"; concurrency: number };

/** The work of one build's data, on one full vCPU (measured by training a grove, then scaled: see the CLI's estimate). */
export interface WorkProfile {
  /** Seconds to train one tree. */
  trainPerTreeS: number;
  /** Stored grove (and model) bytes per tree. */
  bytesPerTree: number;
  /** The dataset pack's bytes. */
  packBytes: number;
  /** Seconds to check and decode the pack once read. */
  packDecodeS: number;
  /** Extra seconds a fresh process spends on its first trees while the engine's code is compiled (once per container). */
  warmupS: number;
  /** Aggregator: seconds to decode a grove, per tree. */
  loadPerTreeS: number;
  /** Aggregator: seconds to merge and encode the model, per tree. */
  mergePerTreeS: number;
  /** Aggregator: seconds to predict the held-out rows, per tree. */
  evaluatePerTreeS: number;
  /** Aggregator: seconds to score the held-out rows at one point of the metric-by-trees curve (curveTrees: at most 500). */
  evaluatePerPointS: number;
}

export interface FanoutInput {
  trees: number;
  groveSize: number;
  profile: WorkProfile;
  trainer: { memoryMb: number; scaling: MappingScaling };
  aggregator: { memoryMb: number };
  assumptions?: Partial<FanoutAssumptions>;
  prices?: Partial<Prices>;
  /** Whether new containers start cold (default true; the emulator calls handlers in-process: false). */
  coldStarts?: boolean;
  /**
   * CPU work that can run at once across trainers (default: unlimited, each Lambda invocation has its own vCPU).
   * The emulator runs every handler on one JavaScript thread: 1.
   */
  computeSlots?: number;
}

export interface FanoutEstimate {
  trees: number;
  groveSize: number;
  groves: number;
  scaling: MappingScaling;
  /** Submission to the notification published, seconds. */
  wallS: number;
  /** Seconds from submission: last task sent, first trainer started, last grove landed, aggregator started, done. */
  timeline: { queuedS: number; firstStartS: number; landedS: number; aggregatorStartS: number; doneS: number };
  /** The most trainers running at once, and when that was first reached. */
  peakConcurrency: number;
  peakAtS: number;
  /** Trainer containers started (each cold, unless coldStarts is false). */
  containers: number;
  /** The longest trainer invocation (what the trainer's timeout must allow). */
  longestGroveS: number;
  /** The aggregator's own run. */
  aggregateS: number;
  cost: {
    /** The build's estimated USD: cost.ts's model on the simulated groves, plus billed inits and pollers added. */
    usd: number;
    lambdaCompute: number;
    lambdaInit: number;
    requests: number;
    pollers: number;
    /** Provisioned mode: the minimum pollers, billed all month whether builds run or not. */
    standingPollersPerMonth: number;
  };
  /** The simulated groves, as the trainers would have recorded them (milliseconds from submission). */
  groveStats: CostedGrove[];
}

/** A min-heap of timed callbacks; ties run in the order they were scheduled. */
class Agenda {
  private items: { t: number; n: number; run: (t: number) => void }[] = [];
  private n = 0;
  at(t: number, run: (t: number) => void): void {
    this.items.push({ t, n: this.n++, run });
    let i = this.items.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      [this.items[i], this.items[p]] = [this.items[p], this.items[i]];
      i = p;
    }
  }
  runAll(): void {
    while (this.items.length > 0) {
      const top = this.items[0];
      const last = this.items.pop()!;
      if (this.items.length > 0) {
        this.items[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < this.items.length && this.before(l, m)) m = l;
          if (r < this.items.length && this.before(r, m)) m = r;
          if (m === i) break;
          [this.items[i], this.items[m]] = [this.items[m], this.items[i]];
          i = m;
        }
      }
      top.run(top.t);
    }
  }
  private before(a: number, b: number): boolean {
    const x = this.items[a];
    const y = this.items[b];
    return x.t < y.t || (x.t === y.t && x.n < y.n);
  }
}

/** The mapping's concurrency limit as a function of time since the first message appeared. */
function concurrencyLimit(scaling: MappingScaling, a: FanoutAssumptions): { at: (sinceFirst: number) => number; nextRise: (sinceFirst: number) => number } {
  // Whole invocations added so far (the epsilon keeps a rise exactly at nextRise from rounding down).
  const ramp = (start: number, perMinute: number, cap: number) => {
    const added = (s: number) => Math.floor((perMinute * Math.max(0, s)) / 60 + 1e-9);
    return {
      at: (s: number) => Math.min(cap, start + added(s)),
      nextRise: (s: number) => (start + added(s) >= cap ? Infinity : ((added(s) + 1) * 60) / perMinute),
    };
  };
  switch (scaling.mode) {
    case "fixed":
      return { at: () => scaling.concurrency, nextRise: () => Infinity };
    case "default": {
      const cap = Math.min(scaling.maxConcurrency, a.defaultMaxConcurrency, a.accountConcurrency);
      return ramp(Math.min(cap, a.defaultInitialConcurrency), a.defaultRampPerMinute, cap);
    }
    case "provisioned": {
      const cap = Math.min(scaling.maxPollers * a.invocationsPerPoller, a.accountConcurrency);
      return ramp(Math.min(cap, scaling.minPollers * a.invocationsPerPoller), a.provisionedRampPerMinute, cap);
    }
  }
}

interface Container {
  hasPack: boolean;
}

/** Simulates one build of `trees` trees in groves of `groveSize` and prices it. */
export function estimateFanout(input: FanoutInput): FanoutEstimate {
  const a: FanoutAssumptions = { ...AWS_ASSUMPTIONS, ...input.assumptions };
  const prices: Prices = { ...DEFAULT_PRICES, ...input.prices };
  const p = input.profile;
  const cold = input.coldStarts ?? true;
  const trainerSlow = cpuSlowdown(input.trainer.memoryMb);
  const aggregatorSlow = cpuSlowdown(input.aggregator.memoryMb);
  const plan = planGroves(input.trees, input.groveSize);
  const limit = concurrencyLimit(input.trainer.scaling, a);
  const agenda = new Agenda();

  // Submission: the manifest stored, the ledger read, created and started; then the tasks, SendMessageBatch calls
  // of 10, SQS_SEND_IN_FLIGHT at a time.
  const submitS = a.s3RequestS + 3 * a.dynamoRequestS;
  const available = plan.map((_, i) => submitS + (Math.floor(Math.floor(i / 10) / SQS_SEND_IN_FLIGHT) + 1) * a.sqsSendBatchS);
  const firstAt = available[0];

  // Shared CPU (the emulator's one thread): FIFO.
  let cpuFree = input.computeSlots ?? Infinity;
  const cpuWaiting: ((freedAt: number) => void)[] = [];
  const cpu = (t: number, seconds: number, then: (t: number) => void) => {
    const run = (start: number) =>
      agenda.at(start + seconds, (end) => {
        const waiting = cpuWaiting.shift();
        if (waiting) waiting(end);
        else cpuFree++;
        then(end);
      });
    if (cpuFree > 0) {
      cpuFree--;
      run(t);
    } else cpuWaiting.push(run);
  };

  const idle: Container[] = [];
  let containers = 0;
  let inFlight = 0;
  let peak = 0;
  let peakAt = 0;
  let next = 0;
  let wakeAt = Infinity;
  const stats: CostedGrove[] = [];
  let longest = 0;
  // Concurrency over time (for poller-hours): [time, invocations in flight].
  const flight: [number, number][] = [[0, 0]];

  const setFlight = (t: number, value: number) => {
    inFlight = value;
    flight.push([t, value]);
    if (value > peak) {
      peak = value;
      peakAt = t;
    }
  };

  const dispatch = (t: number) => {
    while (next < plan.length && available[next] <= t && inFlight < limit.at(t - firstAt)) start(next++, t);
    if (next >= plan.length) return;
    // Wake when the next task appears or, with tasks waiting at the limit, when the limit next rises.
    const wake = available[next] > t ? available[next] : firstAt + limit.nextRise(t - firstAt);
    if (wake < wakeAt && wake > t && Number.isFinite(wake)) {
      wakeAt = wake;
      agenda.at(wake, (w) => {
        if (wakeAt === w) wakeAt = Infinity;
        dispatch(w);
      });
    }
  };

  const start = (i: number, t: number) => {
    setFlight(t, inFlight + 1);
    let container = idle.pop();
    let isCold = false;
    if (!container) {
      container = { hasPack: false };
      containers++;
      isCold = cold;
    }
    const g = plan[i];
    const trees = g.treeEnd - g.treeStart;
    const bytes = trees * p.bytesPerTree;
    const packCached = container.hasPack;
    const startedAt = t + a.deliveryS + (isCold ? a.coldStartS : 0);
    const times = { startedAt, loadedAt: 0, trainedAt: 0, storedAt: 0 };
    const land = (storedAt: number) => {
      times.storedAt = storedAt;
      const landedAt = storedAt + a.dynamoRequestS;
      stats.push({
        grove: g.grove,
        trees,
        nodes: 0,
        bytes: Math.round(bytes),
        queuedAt: available[i] * 1000,
        startedAt: times.startedAt * 1000,
        loadedAt: times.loadedAt * 1000,
        trainedAt: times.trainedAt * 1000,
        storedAt: times.storedAt * 1000,
        landedAt: landedAt * 1000,
        packCached,
        memoryMb: input.trainer.memoryMb,
      });
      longest = Math.max(longest, landedAt - startedAt);
      agenda.at(landedAt + a.releaseS, (free) => {
        container!.hasPack = true;
        idle.push(container!);
        setFlight(free, inFlight - 1);
        dispatch(free);
      });
    };
    const train = (loadedAt: number) => {
      times.loadedAt = loadedAt;
      cpu(loadedAt, trees * p.trainPerTreeS * trainerSlow, (trainedAt) => {
        times.trainedAt = trainedAt;
        land(trainedAt + a.s3RequestS + bytes / a.s3WriteBytesPerS);
      });
    };
    // The ledger read, then the pack unless this container has it.
    const afterGet = startedAt + a.dynamoRequestS;
    agenda.at(afterGet, (t1) => {
      if (packCached) train(t1);
      // A new container: the pack is read and decoded, and its first trees run while the code is compiled.
      else cpu(t1 + a.s3RequestS + p.packBytes / a.s3ReadBytesPerS, (p.packDecodeS + p.warmupS) * trainerSlow, train);
    });
  };

  agenda.at(firstAt, dispatch);
  agenda.runAll();

  // Aggregation: the last landing's stream record invokes the aggregator.
  const landedS = Math.max(...stats.map((s) => s.landedAt / 1000));
  const aggregatorStartS = landedS + a.streamTriggerS + (cold ? a.aggregatorColdStartS : 0);
  const modelBytes = input.trees * p.bytesPerTree;
  const aggregateS =
    2 * a.dynamoRequestS + // claim, read the record
    a.s3RequestS + // the manifest
    plan.length * a.s3RequestS + modelBytes / a.s3ReadBytesPerS + input.trees * p.loadPerTreeS * aggregatorSlow + // the groves, one by one
    a.s3RequestS + p.packBytes / a.s3ReadBytesPerS + p.packDecodeS * aggregatorSlow + // the pack
    (input.trees * (p.mergePerTreeS + p.evaluatePerTreeS) + curveTrees(input.trees).length * p.evaluatePerPointS) * aggregatorSlow +
    3 * a.s3RequestS + (modelBytes + a.reportBytes) / a.s3WriteBytesPerS + // model, report.json, report.html
    a.dynamoRequestS + // complete
    a.snsPublishS;
  const doneS = aggregatorStartS + aggregateS;

  stats.sort((x, y) => x.grove - y.grove);
  const base = buildCost(stats, { aggregator: { ms: aggregateS * 1000, memoryMb: input.aggregator.memoryMb }, artifacts: 3, prices });
  const initGbS = (cold ? containers * a.coldStartS * input.trainer.memoryMb + a.aggregatorColdStartS * input.aggregator.memoryMb : 0) / 1024;
  const lambdaInit = initGbS * prices.lambdaGbSecond;
  let pollers = 0;
  let standing = 0;
  const scaling = input.trainer.scaling;
  if (scaling.mode === "provisioned") {
    // Pollers above the minimum while the build runs (each carries invocationsPerPoller); the minimum is standing.
    let extraSeconds = 0;
    for (let k = 0; k < flight.length; k++) {
      const [t, n] = flight[k];
      const until = k + 1 < flight.length ? flight[k + 1][0] : t;
      extraSeconds += Math.max(0, Math.ceil(n / a.invocationsPerPoller) - scaling.minPollers) * (until - t);
    }
    pollers = (extraSeconds / 3600) * prices.eventPollerHour;
    standing = scaling.minPollers * HOURS_PER_MONTH * prices.eventPollerHour;
  }
  const requests = base.usd.total - base.usd.lambdaCompute;
  return {
    trees: input.trees,
    groveSize: input.groveSize,
    groves: plan.length,
    scaling,
    wallS: doneS,
    timeline: { queuedS: available[available.length - 1], firstStartS: Math.min(...stats.map((s) => s.startedAt / 1000)), landedS, aggregatorStartS, doneS },
    peakConcurrency: peak,
    peakAtS: peakAt,
    containers,
    longestGroveS: longest,
    aggregateS,
    cost: {
      usd: base.usd.total + lambdaInit + pollers,
      lambdaCompute: base.usd.lambdaCompute,
      lambdaInit,
      requests,
      pollers,
      standingPollersPerMonth: standing,
    },
    groveStats: stats,
  };
}

/** Grove sizes worth trying for `trees` trees: round sizes up to `trees`, within `maxGroves` groves. */
export function groveSizeCandidates(trees: number, maxGroves: number): number[] {
  const round = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000];
  const sizes = round.filter((s) => s <= trees && Math.ceil(trees / s) <= maxGroves);
  if (sizes.length === 0 || sizes.at(-1)! < trees) sizes.push(Math.max(trees, Math.ceil(trees / maxGroves)));
  return [...new Set(sizes)].filter((s) => Math.ceil(trees / s) <= maxGroves).sort((x, y) => x - y);
}

export interface GroveSizeSuggestion {
  fastest: FanoutEstimate;
  cheapest: FanoutEstimate;
  /** Every candidate tried, smallest grove size first. */
  tried: FanoutEstimate[];
}

/**
 * The grove size that minimises wall time, and the one that minimises cost, among `groveSizeCandidates`, leaving
 * out sizes whose groves would not finish within the trainer's timeout. Ties go to the larger grove (fewer tasks).
 */
export function suggestGroveSize(
  input: Omit<FanoutInput, "groveSize">,
  options: { maxGroves: number; timeoutS: number },
): GroveSizeSuggestion | undefined {
  const tried = groveSizeCandidates(input.trees, options.maxGroves)
    .map((groveSize) => estimateFanout({ ...input, groveSize }))
    .filter((e) => e.longestGroveS <= options.timeoutS);
  if (tried.length === 0) return undefined;
  const best = (key: (e: FanoutEstimate) => number) => tried.reduce((m, e) => (key(e) <= key(m) ? e : m));
  return { fastest: best((e) => e.wallS), cheapest: best((e) => e.cost.usd), tried };
}
