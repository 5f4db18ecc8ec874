/**
 * The chart library report.html inlines: d3 and Observable Plot, their minified browser builds, read from
 * node_modules when a report is first rendered. Neither package exports its dist/ path, so the files are found
 * the way Node finds a package: in node_modules of this module's directory or any directory above it. That
 * holds in the repo (hoisted node_modules) and in the aggregator's Lambda bundle, which gets the two files
 * copied to node_modules/ of its root (copyFiles in stacks/aggregation.ts) and runs from below that root.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** In load order: Plot's browser build reads the global `d3`. Paths relative to a node_modules directory. */
export const CHART_LIBRARY_FILES = ["d3/dist/d3.min.js", "@observablehq/plot/dist/plot.umd.min.js"] as const;

export interface ChartLibrary {
  /** The files' texts, in load order. */
  scripts: { file: string; text: string }[];
  bytes: number;
}

const loaded = new Map<string, ChartLibrary>();

/** The first node_modules/<file> in `from` or a directory above it. */
export function findInNodeModules(from: string, file: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", file);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/** Reads the chart library once per process; throws one line naming the missing file. */
export function chartLibrary(from = dirname(fileURLToPath(import.meta.url))): ChartLibrary {
  const cached = loaded.get(from);
  if (cached) return cached;
  const scripts = CHART_LIBRARY_FILES.map((file) => {
    const path = findInNodeModules(from, file);
    if (!path) throw new Error(`report.html needs the chart library file node_modules/${file}, found nowhere above ${from}`);
    return { file, text: readFileSync(path, "utf8") };
  });
  const library = { scripts, bytes: scripts.reduce((n, s) => n + Buffer.byteLength(s.text), 0) };
  loaded.set(from, library);
  return library;
}
