import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedLoop, openLoop, percentile } from "../load.ts";

describe("percentile (nearest rank)", () => {
  it("picks the value at rank ceil(p/100 × n)", () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 99), percentile(xs, 100), percentile(xs, 0)]).toEqual([50, 99, 100, 1]);
    expect(percentile([3, 7, 9], 50)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("the load generator", () => {
  let server: Server;
  let url: string;
  const bodies: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d));
      req.on("end", () => {
        bodies.push(body);
        res.writeHead(body === "fail" ? 500 : 200, { "content-type": "application/json" });
        res.end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("open loop: sends exactly rate × duration requests, cycling through the bodies, and times every answer", async () => {
    bodies.length = 0;
    const r = await openLoop({ url, bodies: ["a", "b", "c"], rate: 200, durationMs: 250 });
    expect(r.sent).toBe(50);
    expect(r.ok).toBe(50);
    expect(r.errors).toBe(0);
    expect(bodies.sort()).toEqual([...Array(17).fill("a"), ...Array(17).fill("b"), ...Array(16).fill("c")]);
    expect(r.latencyMs.p50).toBeGreaterThan(0);
    expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p99);
    expect(r.latencyMs.p99).toBeLessThanOrEqual(r.latencyMs.max);
    expect(r.maxSendLagMs).toBeGreaterThanOrEqual(0);
  });

  it("closed loop: stops at the request cap; non-2xx answers are errors, not latencies", async () => {
    bodies.length = 0;
    const r = await closedLoop({ url, bodies: ["ok", "fail"], connections: 3, durationMs: 60_000, maxRequests: 40 });
    expect(r.sent).toBe(40);
    expect(bodies).toHaveLength(40);
    expect(r.ok + r.errors).toBe(40);
    expect(r.errors).toBe(bodies.filter((b) => b === "fail").length);
    expect(r.firstError).toBe("HTTP 500");
  });

  it("counts a refused connection as an error", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const r = await closedLoop({ url: dead, bodies: ["x"], connections: 1, durationMs: 60_000, maxRequests: 3 });
    expect([r.sent, r.ok, r.errors]).toEqual([3, 0, 3]);
    expect(r.firstError).toMatch(/ECONNREFUSED/);
  });
});
