/**
 * The report of a partitioned run (one model per value of a column): how many partitions trained, were skipped or
 * failed, the row-weighted metrics, every partition's row in one sortable table, and their scores against their sizes.
 */
import { showParams, type PartitionOutcome, type PartitionRanking, type PartitionReport } from "@canopy/core";
import { bytes, esc, figure, num, page, section, seconds, sortableTable, table, usd, type Column } from "./html.ts";

type Charts = Record<string, Record<string, unknown>>;

/** The held-out metrics shown per task, the headline first (as the build's page shows them). */
const METRICS = {
  classification: [
    { key: "accuracy", label: "accuracy" },
    { key: "macro_f1", label: "macro F1" },
    { key: "log_loss", label: "log-loss" },
  ],
  regression: [
    { key: "r2", label: "R²" },
    { key: "mse", label: "MSE" },
    { key: "mae", label: "MAE" },
  ],
} as const;

function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

const metricOf = (o: Pick<PartitionOutcome, "metrics">, key: string): number | undefined => {
  const v = o.metrics?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
};

const buildLink = (id: string) => `<a class="nowrap" href="../../builds/${esc(id)}/report.html">${esc(id)}</a>`;

/** The partitions proper, in the report's (key) order: the fallback has a section of its own. */
const partitionsOf = (r: PartitionReport) => r.partitions.filter((p) => !p.fallback);

/**
 * One dot per completed partition with a held-out score: its rows (log axis: sizes span orders of magnitude) against
 * its headline metric, the row-weighted mean as a dashed rule, the fallback (trained on every row) as a ring.
 */
function spreadSection(r: PartitionReport, charts: Charts): string {
  const m = METRICS[r.task][0];
  const scored = partitionsOf(r).filter((p) => p.status === "COMPLETED" && metricOf(p, m.key) !== undefined);
  if (scored.length === 0)
    return section("spread", "Score against size", `<p class="muted">No partition has a held-out score (test_fraction 0): nothing to chart.</p>`);
  const point = (p: PartitionOutcome, name: string) => ({
    x: p.rows,
    y: metricOf(p, m.key)!,
    title: `${name}: ${p.rows} rows, test ${m.label} ${num(metricOf(p, m.key))} on ${p.testRows ?? 0} held-out rows`,
  });
  const fallback = r.partitions.find((p) => p.fallback && p.status === "COMPLETED" && metricOf(p, m.key) !== undefined);
  const mean = typeof r.metrics[m.key] === "number" ? (r.metrics[m.key] as number) : null;
  charts.spread = {
    kind: "partitions",
    xLabel: `rows in the partition (log scale)`,
    yLabel: `test ${m.label}`,
    points: scored.map((p) => point(p, `${r.partitionBy} = ${p.value}`)),
    fallback: fallback ? [point(fallback, "fallback (every row)")] : [],
    mean: mean === null ? [] : [{ y: mean, title: `row-weighted test ${m.label} over the partitions: ${num(mean)}` }],
  };
  const unscored = partitionsOf(r).length - scored.length;
  const note =
    `One dot per partition that trained (${scored.length}), its held-out ${m.label} against its rows; hover a dot for its ${esc(r.partitionBy)}. ` +
    (mean !== null ? `The dashed line is the row-weighted ${m.label} over the partitions. ` : "") +
    (fallback ? `The ring is the fallback model, trained on all ${fallback.rows} rows. ` : "") +
    (unscored > 0 ? `${unscored} partition(s) not drawn: failed, or nothing held out. ` : "") +
    "Small partitions hold out few rows, so their scores spread wider: a low score there may be noise rather than a bad model.";
  return section("spread", "Score against size", figure("spread", `Test ${m.label} of each partition against its rows`, note));
}

function partitionTable(r: PartitionReport): string {
  const metrics = METRICS[r.task];
  const columns: Column<PartitionOutcome>[] = [
    { head: r.partitionBy, cell: (p) => esc(p.value) },
    { head: "rows", cell: (p) => String(p.rows), numeric: true },
    { head: "train rows", cell: (p) => (p.trainRows === undefined ? "–" : String(p.trainRows)), sort: (p) => p.trainRows ?? -1, numeric: true },
    { head: "test rows", cell: (p) => (p.testRows === undefined ? "–" : String(p.testRows)), sort: (p) => p.testRows ?? -1, numeric: true },
    ...metrics.map(
      (m): Column<PartitionOutcome> => ({ head: `test ${m.label}`, cell: (p) => num(metricOf(p, m.key)), sort: (p) => metricOf(p, m.key) ?? "-Infinity", numeric: true }),
    ),
    { head: "trees", cell: (p) => (p.trees === undefined ? "–" : String(p.trees)), sort: (p) => p.trees ?? -1, numeric: true },
    { head: "model", cell: (p) => (p.modelBytes === undefined ? "–" : bytes(p.modelBytes)), sort: (p) => p.modelBytes ?? -1, numeric: true },
    { head: "cost", cell: (p) => (p.usd === undefined ? "–" : usd(p.usd)), sort: (p) => p.usd ?? -1, numeric: true },
    { head: "status", cell: (p) => (p.status === "FAILED" ? `<span class="bad" title="${esc(p.error ?? "")}">FAILED</span>` : "COMPLETED") },
    { head: "build", cell: (p) => (p.status === "COMPLETED" ? buildLink(p.buildId) : `<span class="nowrap">${esc(p.buildId)}</span>`), sort: (p) => p.buildId },
  ];
  const rows = partitionsOf(r);
  const failed = rows.filter((p) => p.status === "FAILED").length;
  return section(
    "partitions",
    "Partitions",
    sortableTable(
      rows,
      columns,
      `${rows.length} partitions by ${r.partitionBy} with at least ${r.minPartitionRows} rows${failed ? `, ${failed} failed` : ""} (click a column to sort; each build links to its own report)`,
    ),
  );
}

/**
 * A tuned run (tune --partition-by): how each partition's candidates ranked, the parameters its model uses and their
 * cross-validated (or out-of-bag) score; with --shared-params, the one set and its mean over the partitions.
 */
function tuningSection(r: PartitionReport): string {
  const t = r.tuning;
  if (!t) return "";
  const scored = t.oob ? "out of bag" : `over ${t.cv} folds`;
  const shared = t.shared;
  const uses = (p: PartitionRanking) => (shared ? shared.best_params_ : p.best_params_);
  const score = (p: PartitionRanking) => (shared ? p.candidates.find((c) => c.index === shared.best_index_)?.mean_test_score : p.best_score_);
  const head = shared
    ? `<p class="note">--shared-params: one set for every partition, ${esc(showParams(shared.best_params_))}, the highest mean ${esc(t.scoring)} over the partitions (${num(shared.best_score_)}); a candidate that failed or scored NaN in any partition ranks last.</p>`
    : `<p class="note">Each partition tuned on its own rows: its model uses its own best candidate (scikit-learn 1.9.1's best_params_, ranked ${esc(scored)}).</p>`;
  return section(
    "tuning",
    "Tuning",
    head +
      sortableTable(
        t.partitions,
        [
          { head: r.partitionBy, cell: (p) => esc(p.value) },
          { head: "rows", cell: (p) => String(p.rows), numeric: true },
          { head: `${shared ? "" : "best "}mean ${esc(t.scoring)} ${esc(scored)}`, cell: (p) => num(score(p)), sort: (p) => score(p) ?? "-Infinity", numeric: true },
          { head: "params its model uses", cell: (p) => esc(showParams(uses(p))) },
          { head: "builds", cell: (p) => `${p.builds.completed}/${p.builds.total}`, sort: (p) => p.builds.completed, numeric: true },
        ],
        `${t.candidates.length} candidates x ${t.oob ? "1 out-of-bag build" : `${t.cv} folds`} per partition (${t.builds.total} builds, ${t.builds.failed} failed); the held-out rows were used for nothing of this`,
      ),
  );
}

function skippedSection(r: PartitionReport): string {
  if (r.skipped.length === 0) return section("skipped", "Skipped", `<p class="note">None: every partition had at least ${r.minPartitionRows} rows and trained.</p>`);
  const served = r.fallback ? "the fallback model serves their rows" : "a row with one of these values gets a per-row error (no fallback)";
  return section(
    "skipped",
    "Skipped",
    sortableTable(
      r.skipped,
      [
        { head: r.partitionBy, cell: (s) => esc(s.value) },
        { head: "rows", cell: (s) => String(s.rows), numeric: true },
        { head: "reason", cell: (s) => esc(s.reason) },
      ],
      `${r.skipped.length} partition(s) without a model of their own: ${served}`,
    ),
  );
}

function fallbackSection(r: PartitionReport): string {
  const f = r.partitions.find((p) => p.fallback);
  if (!f) return "";
  const metrics = METRICS[r.task].map((m): [string, string] => [`test ${m.label}`, num(metricOf(f, m.key))]);
  return section(
    "fallback",
    "Fallback model",
    table([
      ["build", f.status === "COMPLETED" ? buildLink(f.buildId) : esc(f.buildId)],
      ["trained on", `all ${f.rows} rows${f.trainRows !== undefined ? ` (${f.trainRows} train, ${f.testRows} held out)` : ""}`],
      ...metrics,
    ]) + `<p class="note">--fallback ${esc(r.fallback ?? "global")}: it serves the skipped partitions and values no partition has. Its scores are not in the row-weighted metrics.</p>`,
  );
}

function summarySection(r: PartitionReport): string {
  const c = r.counts;
  const shown = METRICS[r.task].filter((m) => typeof r.metrics[m.key] === "number");
  const weighted = shown.length
    ? table([...shown.map((m): [string, string] => [m.label, num(r.metrics[m.key] as number)]), ["held-out rows", String(r.metrics.n ?? 0)]])
    : '<p class="muted">No held-out rows (test_fraction 0): nothing to score.</p>';
  const counts = table([
    ["partitions", `${c.partitions} distinct values of ${esc(r.partitionBy)}`],
    ["trained", String(c.completed)],
    ["skipped", `${c.skipped} (fewer than ${r.minPartitionRows} rows)`],
    ["failed", c.failed ? `<span class="bad">${c.failed}</span>` : "0"],
    ["rows", `${c.rows}${c.unkeyed ? ` (${c.unkeyed} without a ${esc(r.partitionBy)}: only a fallback trains on them)` : ""}`],
    ["cost", r.cost.billedGbS > 0 ? `${usd(r.cost.usd)} (${num(r.cost.billedGbS, 1)} GB-s of Lambda over the builds)` : "trained on this machine: no Lambda bill"],
  ]);
  return section(
    "summary",
    "Counts and row-weighted metrics",
    `<div class="row"><div><h3>Counts</h3>${counts}</div><div><h3>Held-out, row-weighted over the partitions</h3>${weighted}` +
      `<p class="note">Each partition's metric weighted by its held-out rows. For accuracy, log-loss, MSE and MAE that is the metric over all held-out rows at once; for R² and macro F1 it is a weighted mean of the partitions' values, not the pooled statistic.</p></div></div>`,
  );
}

function specSection(r: PartitionReport): string {
  const { dataset, ...options } = r.spec;
  const tags = Object.entries(r.tags);
  return section(
    "spec",
    "Spec",
    table([
      ["dataset", `<span class="path">${esc(dataset)}</span>`],
      ["partition by", esc(r.partitionBy)],
      ["task", esc(r.task)],
      ["min partition rows", String(r.minPartitionRows)],
      ["fallback", r.fallback ? esc(r.fallback) : "none"],
      ["each partition's options", `<code class="path">${esc(JSON.stringify(options))}</code>`],
      ...(tags.length ? [["tags", esc(tags.map(([k, v]) => `${k}=${v}`).join(" "))] as [string, string]] : []),
      ["model", `<span class="path">${esc(r.modelKey)}</span>`],
    ]) + `<p class="note">Each partition is an ordinary build of these options and seed on its own rows (its own train/test split), with the partition column dropped.</p>`,
  );
}

function cards(r: PartitionReport): string {
  const c = r.counts;
  const m = METRICS[r.task][0];
  const items: [string, string][] = [
    [`${c.completed} of ${c.partitions}`, `partitions by ${r.partitionBy} trained`],
    [String(c.skipped), `skipped (under ${r.minPartitionRows} rows)`],
    [String(c.failed), "failed"],
    [num(typeof r.metrics[m.key] === "number" ? (r.metrics[m.key] as number) : undefined), `test ${m.label}, row-weighted`],
    [String(c.rows), "rows"],
    [seconds(r.completedAt - r.createdAt), "submitted → report"],
  ];
  if (r.cost.billedGbS > 0) items.push([usd(r.cost.usd), "estimated AWS cost"]);
  return `<div class="cards">${items.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join("")}</div>`;
}

/** report.html of a partitioned run. */
export function renderPartitions(r: PartitionReport): string {
  const charts: Charts = {};
  const name = r.spec.dataset.split(/[\\/]/).pop() || r.spec.dataset;
  const label = r.spec.label !== undefined ? ` of “${esc(r.spec.label)}”` : "";
  const fallback = fallbackSection(r);
  return page({
    title: `Canopy partitioned run ${r.runId} · ${name}`,
    header:
      `<h1>Canopy partitioned run ${esc(r.runId)}: ${esc(name)}</h1>` +
      `<p>${esc(r.status)} · ${esc(r.task)}${label} · one model per ${esc(r.partitionBy)} · submitted ${esc(time(r.createdAt))}, report ${esc(time(r.completedAt))}</p>`,
    nav: [
      ["spread", "Score against size"],
      ["partitions", "Partitions"],
      ...(r.tuning ? ([["tuning", "Tuning"]] as [string, string][]) : []),
      ["skipped", "Skipped"],
      ...(fallback ? ([["fallback", "Fallback"]] as [string, string][]) : []),
      ["summary", "Counts and metrics"],
      ["spec", "Spec"],
    ],
    body: cards(r) + spreadSection(r, charts) + partitionTable(r) + tuningSection(r) + skippedSection(r) + fallback + summarySection(r) + specSection(r),
    charts,
    footer: `Written from partitions/${esc(r.runId)}/report.json (v${r.v}) by Canopy. Charts: Observable Plot and d3 (ISC licence), inlined: this file needs no network.`,
  });
}
