// bench/RESULTS.md: a short summary of the latest run (overwritten each time).
import { cpus } from "node:os";
import type { SectionResult } from "./section.ts";
import { formatTable, markdownTable } from "./table.ts";

export interface RunInfo {
  date: Date;
  quick: boolean;
  /** Extra facts for the header, e.g. { "scikit-learn": "1.9.1" }. */
  versions: Record<string, string>;
  /** 1-minute load average when the run started: a busy machine makes every number slower. */
  loadAtStart: number;
  /** Highest 1-minute load average sampled during the run; the benchmark itself adds about 1. */
  loadPeak: number;
}

export function machineLine(): string {
  const c = cpus();
  return `${c.length} cores (${c[0]?.model.trim() ?? "unknown CPU"})`;
}

export function resultsMarkdown(info: RunInfo, sections: SectionResult[]): string {
  const versions = Object.entries(info.versions).map(([k, v]) => `${k} ${v}`).join(", ");
  const out = [
    "# Benchmark results",
    "",
    "Written by `npm run bench`; each run overwrites this file. Raw numbers: bench/out/results.json (not committed).",
    "",
    `- Date: ${info.date.toISOString().replace(/\.\d+Z$/, "Z")}`,
    `- Mode: ${info.quick ? "BENCH_QUICK=1 (digits + FM 5k only; smoke test, not the real comparison)" : "full"}`,
    `- Machine: ${machineLine()}, 1-min load average ${info.loadAtStart.toFixed(2)} at start, peak ${info.loadPeak.toFixed(2)} during the run (the run itself adds ~1 on its busy core)`,
    `- Versions: ${versions}`,
    "",
  ];
  const targets = sections.flatMap((s) => s.targets.map((t) => ({ ...t, load: s.load })));
  if (targets.length > 0) {
    out.push("## Targets", "", markdownTable({
      title: "targets",
      headers: ["target", "measured", "result", "load (start / peak)"],
      rows: targets.map((t) => [t.target, t.measured, t.result, loadText(t.load)]),
    }), "");
  }
  for (const s of sections) {
    out.push(`## ${s.title}`, "");
    if (s.load) out.push(`- 1-min load average during this section: ${loadText(s.load)} (start / peak)`, "");
    for (const t of s.tables) {
      out.push(`**${t.title}**`, "", markdownTable(t), "");
      for (const n of t.notes ?? []) out.push(`- ${n}`);
      if (t.notes?.length) out.push("");
    }
  }
  return out.join("\n");
}

function loadText(load: SectionResult["load"]): string {
  return load ? `${load.start.toFixed(2)} / ${load.peak.toFixed(2)}` : "-";
}

export function resultsText(sections: SectionResult[]): string {
  const out: string[] = [];
  for (const s of sections) {
    out.push(`== ${s.title} ==`, "");
    for (const t of s.tables) out.push(formatTable(t), "");
  }
  const targets = sections.flatMap((s) => s.targets);
  if (targets.length > 0) {
    out.push(formatTable({ title: "Targets", headers: ["result", "target", "measured"], rows: targets.map((t) => [t.result, t.target, t.measured]) }));
  }
  return out.join("\n");
}

