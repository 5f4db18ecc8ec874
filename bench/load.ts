// A small HTTP load generator for the serving section, bounded in time and requests, over keep-alive sockets.
// Open loop (a fixed offered rate, latency counted from each request's scheduled time, so a server that falls
// behind is charged for the queueing it causes, as wrk2 does) and closed loop (N connections back to back, for
// the most requests/s the server sustains).
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";

export interface LoadTarget {
  url: string;
  /** Request bodies, sent in turn. */
  bodies: string[];
  contentType?: string;
}

export interface LoadResult {
  sent: number;
  /** 2xx answers. */
  ok: number;
  /** Non-2xx answers and transport errors. */
  errors: number;
  firstError?: string;
  /** First send to last answer. */
  seconds: number;
  /** ok / seconds. */
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Open loop only: the most the generator itself sent a request after its scheduled time. */
  maxSendLagMs?: number;
}

/** Nearest-rank percentile of ascending values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

function summarize(latencies: number[], sent: number, errors: number, elapsedMs: number, firstError?: string): LoadResult {
  const sorted = latencies.slice().sort((a, b) => a - b);
  const ok = latencies.length;
  const seconds = elapsedMs / 1000;
  return {
    sent,
    ok,
    errors,
    ...(firstError ? { firstError } : {}),
    seconds,
    requestsPerSecond: seconds > 0 ? ok / seconds : 0,
    latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? NaN },
  };
}

/** One POST; resolves with the status (0 for a transport error) once the whole answer is read. */
function post(agent: Agent, url: URL, body: string, contentType: string): Promise<{ status: number; error?: string }> {
  return new Promise((resolve) => {
    const req = request(url, { method: "POST", agent, headers: { "content-type": contentType, "content-length": Buffer.byteLength(body) } }, (res) => {
      res.on("data", () => {});
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
      res.on("error", (err) => resolve({ status: 0, error: err.message }));
    });
    req.on("error", (err) => resolve({ status: 0, error: err.message }));
    req.end(body);
  });
}

/**
 * Offers `rate` requests/s for `durationMs` (rate × duration requests in all), whatever the answers' pace, with
 * at most `maxSockets` connections; requests beyond those wait for a socket, and that wait counts as latency.
 * Answers still outstanding `drainMs` after the last send are counted as errors.
 */
export async function openLoop(target: LoadTarget & { rate: number; durationMs: number; maxSockets?: number; drainMs?: number }): Promise<LoadResult> {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: target.maxSockets ?? 64 });
  const total = Math.max(1, Math.floor((target.rate * target.durationMs) / 1000));
  const interval = 1000 / target.rate;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let maxLag = 0;
  let lastDone = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now() + 5;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + i * interval <= now) {
        const scheduled = start + i * interval;
        maxLag = Math.max(maxLag, now - scheduled);
        const p = post(agent, url, target.bodies[i % target.bodies.length], target.contentType ?? "application/json").then(({ status, error }) => {
          const done = performance.now();
          lastDone = Math.max(lastDone, done);
          if (status >= 200 && status < 300) latencies.push(done - scheduled);
          else {
            errors++;
            firstError ??= error ?? `HTTP ${status}`;
          }
          pending.delete(p);
        });
        pending.add(p);
        i++;
      }
      if (i < total) setTimeout(tick, Math.max(0, Math.min(1, start + i * interval - performance.now())));
      else resolve();
    };
    setTimeout(tick, 5);
  });
  const drained = await Promise.race([
    Promise.all([...pending]).then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), target.drainMs ?? 10_000).unref()),
  ]);
  if (!drained) {
    errors += pending.size;
    firstError ??= `${pending.size} requests unanswered ${target.drainMs ?? 10_000} ms after the last send`;
  }
  agent.destroy();
  return { ...summarize(latencies, total, errors, (lastDone || performance.now()) - start, firstError), maxSendLagMs: maxLag };
}

/** `connections` loops, each sending its next request when the last is answered, until the time or request cap. */
export async function closedLoop(target: LoadTarget & { connections: number; durationMs: number; maxRequests: number }): Promise<LoadResult> {
  const url = new URL(target.url);
  const agent = new Agent({ keepAlive: true, maxSockets: target.connections });
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let sent = 0;
  const start = performance.now();
  const deadline = start + target.durationMs;
  const worker = async () => {
    while (sent < target.maxRequests && performance.now() < deadline) {
      const body = target.bodies[sent % target.bodies.length];
      sent++;
      const t = performance.now();
      const { status, error } = await post(agent, url, body, target.contentType ?? "application/json");
      if (status >= 200 && status < 300) latencies.push(performance.now() - t);
      else {
        errors++;
        firstError ??= error ?? `HTTP ${status}`;
      }
    }
  };
  await Promise.all(Array.from({ length: target.connections }, worker));
  const elapsed = performance.now() - start;
  agent.destroy();
  return summarize(latencies, sent, errors, elapsed, firstError);
}
