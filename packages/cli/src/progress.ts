import type { BuildEnd, BuildEvent, GroveProgress, Runtime } from "@canopy/core";
import { duration } from "./format.ts";

/** What the CLI shows after each grove settles: core's counts, whichever runtime computed them. */
export type { GroveProgress } from "@canopy/core";

export interface ProgressView {
  /** One informational line (build started, resumed, aggregating...). */
  note(text: string): void;
  update(p: GroveProgress): void;
  stop(): void;
}

/**
 * Trees per second and the time left, counting only what this run trained: `base` is the first event seen,
 * so a resumed build's groves that had landed before do not inflate the rate, nor do an extension's copies.
 */
export function rates(p: GroveProgress, base: Pick<GroveProgress, "treesDone" | "treesCopied" | "elapsedMs"> = { treesDone: 0, elapsedMs: 0 }) {
  const elapsed = p.elapsedMs - base.elapsedMs;
  const trained = (q: Pick<GroveProgress, "treesDone" | "treesCopied">) => q.treesDone - (q.treesCopied ?? 0);
  const treesPerSecond = elapsed > 0 ? ((trained(p) - trained(base)) * 1000) / elapsed : 0;
  const left = p.treesTotal - p.treesDone;
  return { treesPerSecond, etaMs: treesPerSecond > 0 ? (left * 1000) / treesPerSecond : undefined };
}

/** One line per landing, e.g. for logs and CI. */
export function progressLine(p: GroveProgress, base?: Pick<GroveProgress, "treesDone" | "treesCopied" | "elapsedMs">): string {
  const { treesPerSecond, etaMs } = rates(p, base);
  const failed = p.failed > 0 ? `, ${p.failed} failed` : "";
  const eta = p.landed + p.failed < p.total && etaMs !== undefined ? `, ETA ${duration(etaMs)}` : "";
  return `canopy: ${p.buildId}: groves ${p.landed}/${p.total} landed${failed} (${p.treesDone}/${p.treesTotal} trees, ${treesPerSecond.toFixed(1)} trees/s${eta})`;
}

/** Large builds print about every percent; the first event (training starts) prints nothing. */
function linesView(stream: NodeJS.WritableStream): ProgressView {
  let base: GroveProgress | undefined;
  return {
    note: (text) => stream.write(`canopy: ${text}\n`),
    update(p) {
      if (base === undefined) {
        base = p;
        return;
      }
      const step = Math.max(1, Math.ceil(p.total / 100));
      const settled = p.landed + p.failed;
      if (settled % step === 0 || settled === p.total || p.failed > 0) stream.write(`${progressLine(p, base)}\n`);
    },
    stop() {},
  };
}

/** A live bar on a terminal: groves landed / total, trees/s, ETA. cli-progress is loaded only here. */
async function barView(stream: NodeJS.WriteStream): Promise<ProgressView> {
  const { SingleBar } = await import("cli-progress");
  const bar = new SingleBar({
    stream,
    format: "training |{bar}| {value}/{total} groves | {trees} trees | {rate} trees/s | ETA {left}",
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
    fps: 10,
  });
  let started = false;
  let base: GroveProgress | undefined;
  return {
    note(text) {
      if (started) bar.stop();
      started = false;
      stream.write(`canopy: ${text}\n`);
    },
    update(p) {
      base ??= p;
      const { treesPerSecond, etaMs } = rates(p, base);
      const payload = {
        trees: `${p.treesDone}/${p.treesTotal}`,
        rate: treesPerSecond.toFixed(1),
        left: p.landed + p.failed >= p.total ? "0 s" : etaMs === undefined ? "?" : duration(etaMs),
      };
      if (!started) {
        bar.start(p.total, p.landed + p.failed, payload);
        started = true;
      } else bar.update(p.landed + p.failed, payload);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

export async function progressView(stream: NodeJS.WriteStream = process.stderr): Promise<ProgressView> {
  return stream.isTTY ? barView(stream) : linesView(stream);
}

export interface ProgressPrinter {
  show(event: BuildEvent): Promise<void>;
  /** One line, e.g. a warning: the live bar is stopped first so it is not garbled. */
  note(text: string): void;
  stop(): void;
}

/**
 * A runtime's events on the terminal, as canopy train shows them, one view per build: a note when a build starts
 * training (its groves and trees, and how many had landed before), one update per grove settled, a note when it
 * aggregates; the view stops when the build is done. `announce: false` leaves out the first note (the caller
 * said it already).
 */
export function progressPrinter(stream: NodeJS.WriteStream, options: { announce?: boolean } = {}): ProgressPrinter {
  const views = new Map<string, ProgressView>();
  let last: ProgressView | undefined;
  return {
    async show(event) {
      if (event.type === "end" || !event.buildId) return;
      let view = views.get(event.buildId);
      if (!view && event.type === "progress") {
        view = await progressView(stream);
        views.set(event.buildId, view);
        const resumed = event.landed + event.failed > 0 ? `, resuming with ${event.landed} already landed` : "";
        if (options.announce !== false) view.note(`build ${event.buildId}: ${event.total} groves, ${event.treesTotal} trees${resumed}`);
      }
      if (!view) return;
      last = view;
      if (event.type === "progress") view.update(event);
      else if (event.stage === "aggregating") view.note(`${event.buildId}: all groves in; merging and evaluating`);
      else if (event.stage === "done") view.stop();
    },
    note(text) {
      if (last) last.note(text);
      else stream.write(`canopy: ${text}\n`);
    },
    stop() {
      for (const view of views.values()) view.stop();
    },
  };
}

/** Follows one build with its progress on the terminal until it ends; undefined if the signal stopped the wait first. */
export async function watchBuild(runtime: Runtime, buildId: string, printer: ProgressPrinter, signal?: AbortSignal): Promise<BuildEnd | undefined> {
  try {
    for await (const event of runtime.follow(buildId, { ...(signal ? { signal } : {}) })) {
      await printer.show(event);
      if (event.type === "end") return event;
    }
    return undefined;
  } finally {
    printer.stop();
  }
}
