// The contract every benchmark section follows, so run.ts can print and report them uniformly.
// A section is one async function in its own file; add it to the list in bench/run.ts.
import type { Table } from "./table.ts";

export interface SectionContext {
  /** BENCH_QUICK=1: the smallest cases only, for smoke tests. */
  quick: boolean;
  /** Python with scikit-learn + numpy (bench/.venv). */
  python: string;
  /** Scratch folder for data handed to child processes (gitignored). */
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  /** Progress lines (stderr), not part of the report. */
  log: (line: string) => void;
}

export interface TargetCheck {
  target: string;
  measured: string;
  /** N/A when this run did not measure it (e.g. BENCH_QUICK). */
  result: "PASS" | "MISS" | "N/A";
}

export interface SectionResult {
  title: string;
  tables: Table[];
  targets: TargetCheck[];
  /** Anything worth keeping in bench/out/results.json. */
  raw: unknown;
  /** Set by run.ts: the 1-min load average when the section started and its peak while it ran (sampled every 5 s). */
  load?: { start: number; peak: number };
}

export type Section = (ctx: SectionContext) => Promise<SectionResult>;

export function check(target: string, measured: string, ok: boolean | undefined): TargetCheck {
  return { target, measured, result: ok === undefined ? "N/A" : ok ? "PASS" : "MISS" };
}
