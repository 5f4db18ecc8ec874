import { readFileSync } from "node:fs";
import { keys, type Clock } from "@canopy/core";
import { buildWithStatus, MemoryBlobStore, MemoryLedger, MemoryRegistry } from "@canopy/core/testing";
import { buildPack, fitForest, parseCsv, type Forest } from "@canopy/forest";
import type { ServingRequest } from "../src/index.ts";

export const fixture = (name: string) => readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), "utf8");

/** A forest trained in-process on a fixture (all rows). */
export function train(name: string, trees: number, seed = 1, options: { maxDepth?: number } = {}): Forest {
  const pack = buildPack(parseCsv(fixture(name)));
  return fitForest(pack, { n_estimators: trees, random_state: seed, ...(options.maxDepth !== undefined ? { max_depth: options.maxDepth } : {}) });
}

/** The fixture's feature rows (label column dropped) as numbers. */
export function featureRows(name: string): { header: string[]; rows: number[][]; labels: string[] } {
  const lines = fixture(name).trim().split(/\r?\n/);
  const header = lines[0].split(",");
  const rows = lines.slice(1).map((l) => l.split(","));
  return { header: header.slice(0, -1), rows: rows.map((r) => r.slice(0, -1).map(Number)), labels: rows.map((r) => r[r.length - 1]) };
}

export function manualClock(start = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

export function post(body: string | Uint8Array | undefined, options: { path?: string; query?: Record<string, string>; type?: string } = {}): ServingRequest {
  return {
    method: "POST",
    path: options.path ?? "/",
    query: options.query ?? {},
    headers: options.type === undefined ? { "content-type": "application/json" } : options.type === "" ? {} : { "content-type": options.type },
    body,
  };
}

export const get = (query: Record<string, string> = {}, path = "/"): ServingRequest => ({ method: "GET", path, query, headers: {} });

/** Completed builds with their models in memory ports, and a registry over them. */
export async function memoryRegistry(clock?: Clock) {
  const ledger = new MemoryLedger(clock ? { clock } : {});
  const blobs = new MemoryBlobStore();
  const registry = new MemoryRegistry(ledger, clock ? { clock } : {});
  const addBuild = async (forest: Forest) => {
    const id = await buildWithStatus(ledger, "COMPLETED");
    await blobs.put(keys.model(id), forest.toBinary());
    return id;
  };
  return { ledger, blobs, registry, addBuild };
}

export function json(response: { body: string }): Record<string, unknown> & { error?: string } {
  return JSON.parse(response.body) as Record<string, unknown> & { error?: string };
}
