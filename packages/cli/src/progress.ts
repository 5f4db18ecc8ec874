import type { GroveProgress } from "@canopy/runtime-local";
import { duration } from "./format.ts";

/** What the CLI shows after each grove lands: the embedded runtime's counts (the AWS path derives the same). */
export type { GroveProgress } from "@canopy/runtime-local";

export interface ProgressView {
  /** One informational line (build started, resumed, aggregating...). */
  note(text: string): void;
  update(p: GroveProgress): void;
  stop(): void;
}

/**
 * Trees per second and the time left, counting only what this run trained: `base` is the first event seen,
 * so a resumed build's groves that had landed before do not inflate the rate.
 */
export function rates(p: GroveProgress, base: Pick<GroveProgress, "treesDone" | "elapsedMs"> = { treesDone: 0, elapsedMs: 0 }) {
  const elapsed = p.elapsedMs - base.elapsedMs;
  const treesPerSecond = elapsed > 0 ? ((p.treesDone - base.treesDone) * 1000) / elapsed : 0;
  const left = p.treesTotal - p.treesDone;
  return { treesPerSecond, etaMs: treesPerSecond > 0 ? (left * 1000) / treesPerSecond : undefined };
}

/** One line per landing, e.g. for logs and CI. */
export function progressLine(p: GroveProgress, base?: Pick<GroveProgress, "treesDone" | "elapsedMs">): string {
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
