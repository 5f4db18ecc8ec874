// `npm run bench`: self-setup, run every section, print the tables, write bench/RESULTS.md and bench/out/results.json.
// Env: BENCH_QUICK=1 (digits + FM 5k only), BENCH_MLRF_CAP (seconds, default 120), BENCH_ONLY=name,... (some sections).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resultsMarkdown, resultsText } from "./report.ts";
import type { RunInfo } from "./report.ts";
import type { Section, SectionContext, SectionResult } from "./section.ts";
import { ensureFashionMnist, ensurePython } from "./setup.ts";

// Each section is a function in its own file, imported when it runs. BENCH_ONLY=engines,pipeline,serving,ingest,
// categorical,aggregator,oob,study,partitions,estimate runs some of them. Estimate goes last: its imports (the AWS SDK's
// SQS and SNS clients, through tsx) leave a detached ArrayBuffer behind in this process, after which V8 checks for one
// at every typed-array access, and the sections that train in this process would run 15-45% slower after it.
const SECTIONS: Record<string, () => Promise<Section>> = {
  engines: async () => (await import("./compare.ts")).compareEngines,
  pipeline: async () => (await import("./pipeline.ts")).pipelineSection,
  serving: async () => (await import("./serving.ts")).servingSection,
  ingest: async () => (await import("./ingest.ts")).ingestSection,
  categorical: async () => (await import("./categorical.ts")).categoricalSection,
  aggregator: async () => (await import("./aggregator.ts")).aggregatorSection,
  oob: async () => (await import("./oob.ts")).oobSection,
  study: async () => (await import("./study.ts")).studySection,
  partitions: async () => (await import("./partitions.ts")).partitionsSection,
  estimate: async () => (await import("./estimate.ts")).estimateSection,
};

function versionOf(pkgJson: string): string {
  try {
    return JSON.parse(readFileSync(pkgJson, "utf8")).version;
  } catch {
    return "?";
  }
}

async function main(): Promise<void> {
  // Every path below (bench/..., node_modules/..., test/fixtures/...) is relative to the repo root.
  process.chdir(fileURLToPath(new URL("..", import.meta.url)));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const quick = process.env.BENCH_QUICK === "1";
  // Which engine code is measured: HEAD, and whether packages/forest differs from it.
  const git = (args: string[]) => spawnSync("git", args, { encoding: "utf8" }).stdout?.trim() ?? "";
  const head = git(["rev-parse", "--short", "HEAD"]) || "?";
  const dirty = git(["status", "--porcelain", "--", "packages/forest"]) !== "";
  const load = loadavg()[0];
  if (load > 1.5) log(`warning: load average ${load.toFixed(2)}; timings will be pessimistic on a busy machine`);

  // Sampled between steps (a synchronous Canopy fit blocks the timer): other work on the machine skews timings.
  let loadPeak = load;
  let sectionPeak = load;
  const sampler = setInterval(() => {
    const now = loadavg()[0];
    loadPeak = Math.max(loadPeak, now);
    sectionPeak = Math.max(sectionPeak, now);
  }, 5000);
  sampler.unref();

  ensureFashionMnist(log);
  const python = ensurePython(log);
  const cacheDir = join("bench", ".cache");
  mkdirSync(cacheDir, { recursive: true });
  const ctx: SectionContext = { quick, python, cacheDir, env: process.env, log };

  const sections: SectionResult[] = [];
  const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of only ?? []) if (!(name in SECTIONS)) throw new Error(`BENCH_ONLY: no section "${name}" (have ${Object.keys(SECTIONS).join(", ")})`);
  for (const [name, importSection] of Object.entries(SECTIONS)) {
    if (only && !only.includes(name)) continue;
    const section = await importSection();
    // Each section's own load: a run is long, and other work on the machine may come and go during it.
    const start = loadavg()[0];
    sectionPeak = start;
    const result = await section(ctx);
    sections.push({ ...result, load: { start, peak: Math.max(sectionPeak, loadavg()[0]) } });
  }
  clearInterval(sampler);
  loadPeak = Math.max(loadPeak, loadavg()[0]);

  const sk = spawnSync(python, ["-c", "import sklearn, numpy; print(sklearn.__version__, numpy.__version__)"], { encoding: "utf8" });
  const [skv, npv] = (sk.stdout ?? "").trim().split(" ");
  const info: RunInfo = {
    date: new Date(),
    quick,
    loadAtStart: load,
    loadPeak,
    versions: {
      canopy: `${head}${dirty ? " + uncommitted packages/forest changes" : ""}`,
      node: process.version,
      "scikit-learn": skv ?? "?",
      numpy: npv ?? "?",
      "ml-random-forest": versionOf("node_modules/ml-random-forest/package.json"),
    },
  };

  console.log(resultsText(sections));
  writeFileSync(join("bench", "RESULTS.md"), resultsMarkdown(info, sections));
  mkdirSync(join("bench", "out"), { recursive: true });
  writeFileSync(join("bench", "out", "results.json"), JSON.stringify({ ...info, sections: sections.map((s) => ({ title: s.title, targets: s.targets, raw: s.raw })) }, null, 2));
  log("wrote bench/RESULTS.md and bench/out/results.json");
}

main().catch((e) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
