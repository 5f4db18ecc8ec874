/** The report of one build: its sections and chart specs, from report.json. */
import { STRAGGLER_RULE, type BuildReport, type GroveReport, type TreeCurve } from "@canopy/core";
import { bytes, esc, figure, num, page, section, seconds, sortableTable, table, usd } from "./html.ts";

/**
 * Stages of a grove on the timeline, in order, and their colours: a trained grove's five, the aggregator's run, and
 * a grove an extension copied from its parent (one bar: read, stamp, store, land).
 */
export const TIMELINE_STAGES = ["queued", "load", "train", "store", "land", "aggregate", "copy"] as const;
const STAGE_COLORS = ["#cbd5e0", "#f6ad55", "#3182ce", "#38a169", "#805ad5", "#d53f8c", "#a0aec0"];

/** The timeline row of an extension's copied groves. */
const COPIED_ROW = "copied";

/** What a curve shows per task: the headline metric first. Higher is better unless `lower`. */
const CURVE_METRICS = {
  classification: [
    { key: "accuracy", label: "accuracy" },
    { key: "log_loss", label: "log-loss", lower: true },
  ],
  regression: [
    { key: "r2", label: "R²" },
    { key: "mse", label: "MSE", lower: true },
  ],
} as const;

type Charts = Record<string, Record<string, unknown>>;

function basename(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** "at 50 trees 0.9511, at 100 trees 0.9578 (+0.0067)": the second half of the forest's effect on a metric. */
function halfwayGain(curve: TreeCurve, key: string, label: string): string | undefined {
  const points = curve.points;
  const last = points.at(-1);
  if (!last || points.length < 2) return undefined;
  const half = points.reduce((best, p) => (Math.abs(p.trees - last.trees / 2) < Math.abs(best.trees - last.trees / 2) ? p : best));
  if (half === last) return undefined;
  const d = last[key] - half[key];
  return `${label} at ${half.trees} trees ${num(half[key])}, at ${last.trees} trees ${num(last[key])} (${d >= 0 ? "+" : ""}${num(d)})`;
}

/** The out-of-bag curve (spec oob_score): the headline metric of the first t trees on the training rows out of bag. */
function oobCurveFigure(r: BuildReport, charts: Charts): { figure: string; note: string } | undefined {
  const curve = r.oobMetricsByTrees;
  if (!curve || curve.points.length === 0) return undefined;
  const m = CURVE_METRICS[r.dataset.task][0];
  charts["curve-oob"] = {
    kind: "curve",
    label: `${m.label} out of bag, ${curve.n} training rows`,
    maxTrees: curve.points.at(-1)!.trees,
    points: curve.points.map((p) => ({ trees: p.trees, value: p[m.key], title: `${p.trees} trees: ${m.label} ${num(p[m.key])} on ${p.oob_rows} rows out of bag` })),
  };
  const gain = halfwayGain(curve, m.key, `${m.label} out of bag`);
  const sampled = curve.n < r.dataset.trainRows ? ` (every ${Math.ceil(r.dataset.trainRows / curve.n)}th of the ${r.dataset.trainRows} training rows)` : "";
  return {
    figure: figure("curve-oob", `${m.label} out of bag, first t trees`),
    note:
      `The out-of-bag curve scores each training row${sampled} with those of the first t trees whose bootstrap sample left it out, over the rows left out by at least one of them; ` +
      `at all ${r.model.trees} trees over every training row it is oob_score ${num(r.oob_score ?? NaN)} (scikit-learn's oob_score_). ${gain ? `${esc(gain)}. ` : ""}`,
  };
}

function curveSection(r: BuildReport, charts: Charts): string {
  const curve = r.metricsByTrees;
  const oob = oobCurveFigure(r, charts);
  if (!curve || curve.points.length === 0) {
    const why = `<p class="muted">${oob ? "Held-out curve not recorded" : "Not recorded"}: ${r.metrics ? "this report predates the curve" : "nothing was held out (test_fraction 0)"}.</p>`;
    return section("trees", "Metric by number of trees", oob ? `<div class="row">${oob.figure}</div><p class="note">${oob.note}</p>${why}` : why);
  }
  const metrics = CURVE_METRICS[r.dataset.task];
  const maxTrees = curve.points.at(-1)!.trees;
  const figures = metrics.map((m) => {
    const id = `curve-${m.key}`;
    charts[id] = {
      kind: "curve",
      label: `${m.label} on ${curve.n} held-out rows${"lower" in m ? " (lower is better)" : ""}`,
      maxTrees,
      points: curve.points.map((p) => ({ trees: p.trees, value: p[m.key], title: `${p.trees} trees: ${m.label} ${num(p[m.key])}` })),
    };
    return figure(id, `${m.label} of the first t trees`);
  });
  if (oob) figures.push(oob.figure);
  const gains = metrics.map((m) => halfwayGain(curve, m.key, m.label)).filter(Boolean);
  const sampled = curve.points.length < maxTrees ? ` (${curve.points.length} evenly spaced points of ${maxTrees})` : "";
  const note =
    `Each point scores the forest of the first t trees on the held-out rows${sampled}. ` +
    (gains.length ? `${esc(gains.join("; "))}. ` : "") +
    "This curve is what tells whether extending the model (adding trees) is worth it: still rising at the right edge, more trees are likely to help; flat, they mostly add training time, model size and prediction latency. " +
    `To extend it: <code>canopy train --extend ${esc(r.buildId)} --trees N</code> (or <code>canopy publish --extend</code>) trains only the new trees, with the same options and seed, into the model a fresh N-tree build gives.` +
    (oob ? ` ${oob.note}` : "");
  return section("trees", "Metric by number of trees", `<div class="row">${figures.join("")}</div><p class="note">${note}</p>`);
}

function confusionSection(r: BuildReport, charts: Charts): string {
  const m = r.metrics;
  if (!m || m.task !== "classification") return "";
  const cells = m.classes.flatMap((actual, i) => {
    const rowTotal = m.confusion_matrix[i].reduce((s, v) => s + v, 0);
    return m.classes.map((predicted, j) => {
      const count = m.confusion_matrix[i][j];
      const rate = rowTotal > 0 ? count / rowTotal : 0;
      return { actual, predicted, count, rate, title: `actual ${actual}, predicted ${predicted}: ${count} of ${rowTotal} (${(rate * 100).toFixed(1)}%)` };
    });
  });
  charts.confusion = { kind: "confusion", classes: m.classes, cells };
  const perClass = m.classes.map((c, i) => {
    const tp = m.confusion_matrix[i][i];
    const support = m.confusion_matrix[i].reduce((s, v) => s + v, 0);
    const predicted = m.confusion_matrix.reduce((s, row) => s + row[i], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { c, precision, recall, f1, support };
  });
  const classTable = sortableTable(perClass, [
    { head: "class", cell: (x) => esc(x.c) },
    { head: "precision", cell: (x) => num(x.precision, 3), sort: (x) => x.precision, numeric: true },
    { head: "recall", cell: (x) => num(x.recall, 3), sort: (x) => x.recall, numeric: true },
    { head: "F1", cell: (x) => num(x.f1, 3), sort: (x) => x.f1, numeric: true },
    { head: "support", cell: (x) => String(x.support), sort: (x) => x.support, numeric: true },
  ]);
  return section(
    "confusion",
    "Confusion matrix",
    `<div class="row">${figure("confusion", `${m.n} held-out rows: actual class (rows) by predicted class (columns)`, "Colour: the share of each actual class predicted as each class; numbers: row counts.")}<div>${classTable}<p class="note">Per class, as scikit-learn's classification_report (zero_division=0).</p></div></div>`,
  );
}

function regressionSection(r: BuildReport, charts: Charts): string {
  const p = r.predictions;
  if (r.dataset.task !== "regression") return "";
  if (!p || p.actual.length === 0) return section("residuals", "Predicted vs actual", '<p class="muted">Not recorded in this report.</p>');
  const lo = Math.min(...p.actual, ...p.predicted);
  const hi = Math.max(...p.actual, ...p.predicted);
  const pad = (hi - lo) * 0.03 || 1;
  const domain = [lo - pad, hi + pad];
  charts.predicted = {
    kind: "scatter",
    mark: "prediction-point",
    xLabel: `actual ${r.dataset.labelName}`,
    yLabel: `predicted ${r.dataset.labelName}`,
    xDomain: domain,
    yDomain: domain,
    diagonal: { x1: domain[0], y1: domain[0], x2: domain[1], y2: domain[1] },
    points: p.actual.map((a, i) => ({ x: a, y: p.predicted[i], title: `actual ${num(a)}, predicted ${num(p.predicted[i])}` })),
  };
  const residuals = p.actual.map((a, i) => a - p.predicted[i]);
  const span = Math.max(...residuals.map(Math.abs)) * 1.05 || 1;
  charts.residuals = {
    kind: "scatter",
    mark: "residual-point",
    xLabel: `predicted ${r.dataset.labelName}`,
    yLabel: "residual (actual − predicted)",
    yDomain: [-span, span],
    points: p.predicted.map((q, i) => ({ x: q, y: residuals[i], title: `predicted ${num(q)}, residual ${num(residuals[i])}` })),
  };
  const sampled = p.step > 1 ? ` (every ${p.step}th of ${p.n} held-out rows)` : ` (all ${p.n} held-out rows)`;
  return section(
    "residuals",
    "Predicted vs actual",
    `<div class="row">${figure("predicted", `Predicted against actual${sampled}`, "On the dashed diagonal a prediction is exact.")}${figure("residuals", "Residuals against prediction", "A funnel or a curve here means the error depends on the value predicted.")}</div>`,
  );
}

/** A horizontal bar chart spec: one bar per row, its value printed beside it. */
function bars(mark: string, unit: string, rows: { label: string; value: number; text: string; title?: string }[], style: { marginLeft?: number; color?: string } = {}) {
  return { kind: "bars", mark, unit, ...style, bars: rows.map((b) => ({ ...b, title: b.title ?? `${b.label}: ${b.text}` })) };
}

function importanceSection(r: BuildReport, charts: Charts): string {
  if (r.featureImportances.length === 0) return "";
  charts.importances = bars(
    "importance-bar",
    "importance (mean decrease in impurity, sums to 1 over all features)",
    r.featureImportances.map((f) => ({ label: f.feature, value: f.importance, text: num(f.importance, 3), title: `${f.feature}: ${num(f.importance)}` })),
    { marginLeft: Math.min(220, 40 + 7 * Math.max(...r.featureImportances.map((f) => f.feature.length))) },
  );
  return section(
    "importances",
    "Feature importances",
    figure("importances", `The ${r.featureImportances.length} most important of ${r.dataset.nFeatures} features`, "scikit-learn's feature_importances_: impurity decrease per feature, normalised per tree, averaged over trees. It favours features with many distinct values."),
  );
}

/** A grove's timeline row: its worker, or a row of its own when the report does not say; copies share one row. */
const rowOf = (g: GroveReport) => (g.copied ? COPIED_ROW : (g.worker ?? `grove ${g.grove}`));

function timelineSection(r: BuildReport, charts: Charts): string {
  const groves = r.groves;
  if (groves.length === 0) return "";
  const t0 = r.createdAt;
  const s = (ms: number) => (ms - t0) / 1000;
  const firstStart = new Map<string, number>();
  for (const g of [...groves].sort((a, b) => a.startedAt - b.startedAt)) if (!firstStart.has(rowOf(g))) firstStart.set(rowOf(g), g.startedAt);
  const rows = [...firstStart.keys()];
  const aggregateMs = r.timings.aggregateMs;
  if (aggregateMs !== undefined) rows.push("aggregator");

  const parentId = r.extends?.buildId ?? "its parent";
  const segments = groves.flatMap((g) => {
    const parts: [string, number, number][] = g.copied
      ? [["copy", g.startedAt, g.landedAt]]
      : [
          ["queued", g.queuedAt, g.startedAt],
          ["load", g.startedAt, g.loadedAt],
          ["train", g.loadedAt, g.trainedAt],
          ["store", g.trainedAt, g.storedAt],
          ["land", g.storedAt, g.landedAt],
        ];
    return parts.map(([stage, a, b]) => ({ row: rowOf(g), grove: g.grove, stage, start: s(a), end: s(b), title: `grove ${g.grove}, ${stage}: ${seconds(b - a)}` }));
  });
  const summary = (g: GroveReport) =>
    g.copied
      ? [`grove ${g.grove}: trees ${g.treeStart}–${g.treeEnd - 1} copied from build ${parentId}, not trained`, `read, stamped, stored and landed in ${seconds(g.landedAt - g.startedAt)}`].join("\n")
      : [
          `grove ${g.grove}: trees ${g.treeStart}–${g.treeEnd - 1} on ${rowOf(g)}${g.attempt && g.attempt > 1 ? `, delivery ${g.attempt}` : ""}${g.straggler ? ", straggler" : ""}`,
          `queued ${seconds(g.waitMs)}, load ${seconds(g.loadMs)}${g.packCached ? " (pack cached)" : ""}, train ${seconds(g.trainMs)}, store ${seconds(g.storeMs)}, land ${seconds(g.landedAt - g.storedAt)}`,
        ].join("\n");
  const aggregation =
    aggregateMs !== undefined
      ? [{ row: "aggregator", stage: "aggregate", start: s(r.completedAt - aggregateMs), end: s(r.completedAt), title: `aggregation: ${seconds(aggregateMs)} (load groves ${seconds(r.timings.loadGrovesMs)}, merge ${seconds(r.timings.mergeMs)}, evaluate ${seconds(r.timings.evaluateMs)})` }]
      : [];
  const end = Math.max(...groves.map((g) => g.landedAt), aggregateMs !== undefined ? r.completedAt : 0);
  charts.timeline = {
    kind: "timeline",
    rows,
    stages: [...TIMELINE_STAGES],
    colors: STAGE_COLORS,
    xDomain: [0, s(end) * 1.02 || 1],
    segments,
    labels: groves.length <= 40,
    groves: groves.map((g) => ({ row: rowOf(g), grove: g.grove, label: String(g.grove), middle: s((g.startedAt + g.landedAt) / 2), started: s(g.startedAt), end: s(g.landedAt), straggler: g.straggler === true, attempt: g.attempt ?? 1, retry: `retry ×${g.attempt ?? 1}`, title: summary(g) })),
    aggregation,
  };

  const stragglers = groves.filter((g) => g.straggler);
  const retried = groves.filter((g) => (g.attempt ?? 1) > 1);
  const copied = groves.filter((g) => g.copied);
  const trained = groves.filter((g) => !g.copied);
  const workers = rows.length - (aggregateMs !== undefined ? 1 : 0) - (copied.length > 0 ? 1 : 0);
  const facts = [
    ...(copied.length > 0
      ? [`${copied.length} grove(s) copied from build ${esc(parentId)}, which this build extends: not trained here (the “${COPIED_ROW}” row)`]
      : []),
    `${trained.length} groves trained on ${workers} ${trained.some((g) => g.worker) ? "worker(s)" : "rows (this report does not say which worker trained each grove)"}`,
    stragglers.length
      ? `<span class="bad">${stragglers.length} straggler(s)</span> (outlined: grove ${stragglers.map((g) => g.grove).join(", ")}; ran over ${STRAGGLER_RULE.multiplier}× the median grove and at least ${STRAGGLER_RULE.minMs} ms, Spark's speculation rule)`
      : `No stragglers (none ran over ${STRAGGLER_RULE.multiplier}× the median grove)`,
    retried.length
      ? `<span class="bad">${retried.length} grove(s) landed on a retry</span> (marked “retry”: ${retried.map((g) => `grove ${g.grove}, delivery ${g.attempt}`).join("; ")})`
      : `Every ${copied.length > 0 ? "trained " : ""}grove landed on its first delivery`,
  ];
  const missing = r.missingGroves.length
    ? `<p class="bad">${r.missingGroves.length} grove(s) failed and are missing from the model:</p>${sortableTable(r.missingGroves, [
        { head: "grove", cell: (m) => String(m.grove), sort: (m) => m.grove, numeric: true },
        { head: "trees", cell: (m) => `${m.treeStart}–${m.treeEnd - 1}` },
        { head: "error", cell: (m) => esc(m.error) },
      ])}`
    : "";
  const groveTable = sortableTable(groves, [
    { head: "grove", cell: (g) => String(g.grove), sort: (g) => g.grove, numeric: true },
    { head: "trees", cell: (g) => `${g.treeStart}–${g.treeEnd - 1}`, sort: (g) => g.treeStart },
    { head: "worker", cell: (g) => esc(rowOf(g)) },
    { head: "delivery", cell: (g) => String(g.attempt ?? 1), sort: (g) => g.attempt ?? 1, numeric: true },
    { head: "queued", cell: (g) => seconds(g.waitMs), sort: (g) => g.waitMs, numeric: true },
    { head: "load", cell: (g) => seconds(g.loadMs), sort: (g) => g.loadMs, numeric: true },
    { head: "train", cell: (g) => seconds(g.trainMs), sort: (g) => g.trainMs, numeric: true },
    { head: "store", cell: (g) => seconds(g.storeMs), sort: (g) => g.storeMs, numeric: true },
    { head: "nodes", cell: (g) => String(g.nodes), sort: (g) => g.nodes, numeric: true },
    { head: "size", cell: (g) => bytes(g.bytes), sort: (g) => g.bytes, numeric: true },
    { head: "straggler", cell: (g) => (g.straggler ? '<span class="bad">yes</span>' : "") },
  ]);
  return section(
    "timeline",
    "Build timeline",
    figure(
      "timeline",
      `One row per worker, one bar per grove: queued (thin strip), data load, training, store, landing; then the aggregator${copied.length > 0 ? `; groves copied from build ${parentId} on the “${COPIED_ROW}” row` : ""}`,
    ) +
      `<p class="note">${facts.join(". ")}.</p>${missing}<details><summary>Every grove (sortable)</summary>${groveTable}</details>`,
  );
}

function timingsSection(r: BuildReport, charts: Charts): string {
  const t = r.timings;
  const stages: [string, number | undefined][] = [
    ["prepare (CSV → pack)", t.prepareMs],
    ["train (first start → last landing)", t.trainWallMs],
    ["load groves", t.loadGrovesMs],
    ["merge", t.mergeMs],
    ["evaluate (with the tree curve)", t.evaluateMs],
    ["aggregate, in all", t.aggregateMs],
    ["total (submitted → report)", t.totalMs],
  ];
  const shown = stages.filter((x): x is [string, number] => x[1] !== undefined);
  charts.stages = bars("stage-bar", "seconds", shown.map(([label, ms]) => ({ label, value: ms / 1000, text: seconds(ms) })), { marginLeft: 230 });
  const c = r.cost;
  const split: [string, number][] = [
    ["waiting in the queue", c.totals.queueWaitS],
    ["loading data", c.totals.dataLoadS],
    ["training", c.totals.computeS],
    ["storing and landing", c.totals.ioS],
  ];
  charts.split = bars(
    "split-bar",
    "seconds, summed over groves",
    split.map(([label, sec]) => ({ label, value: sec, text: seconds(sec * 1000), title: `${label}: ${seconds(sec * 1000)} over ${r.groves.length} groves` })),
    { marginLeft: 170, color: "#38a169" },
  );
  const facts = table([
    ["parallelism", `${num(t.parallelism, 2)}× (grove time summed ÷ train wall time)`],
    ["throughput", `${num(t.treesPerSecond, 1)} trees/s of train wall time`],
  ]);
  let cost: string;
  if (c.totals.billedGbS > 0) {
    const services: [string, number][] = [
      ["Lambda compute", c.usd.lambdaCompute],
      ["Lambda requests", c.usd.lambdaRequests],
      ["SQS", c.usd.sqs],
      ["DynamoDB", c.usd.dynamodb],
      ["S3", c.usd.s3],
      ["SNS", c.usd.sns],
    ];
    charts.cost = bars("cost-bar", "USD (estimate)", services.map(([label, x]) => ({ label, value: x, text: usd(x) })), { marginLeft: 140, color: "#d53f8c" });
    const q = c.requests;
    cost =
      figure("cost", `Estimated cost: ${usd(c.usd.total)} (${num(c.totals.billedGbS, 1)} GB-s of Lambda)`) +
      `<p class="note">Requests: ${q.lambda} Lambda, ${q.sqs} SQS, ${q.dynamoWrites} DynamoDB writes and ${q.dynamoReads} reads, ${q.s3Puts} S3 PUTs and ${q.s3Gets} GETs, ${q.snsPublishes} SNS. ` +
      "Prices: us-east-1 on-demand unless overridden (CANOPY_PRICES), free tiers ignored; S3 storage, CloudWatch Logs and data transfer are not included. Retries add requests.</p>";
  } else {
    cost = `<p class="note">Trained on this machine: there is no Lambda bill to estimate (no function memory was recorded).</p>`;
  }
  return section("timings", "Stage timings and cost", `<div class="row">${figure("stages", "Stage timings")}${figure("split", "Where the groves' time went")}</div>${facts}${cost}`);
}

function metricsTable(r: BuildReport): string {
  const m = r.metrics;
  if (!m && r.refitOf) {
    const e = r.refitOf.metrics ?? {};
    const keys = r.dataset.task === "classification" ? ["accuracy", "macro_f1", "log_loss"] : ["r2", "mse", "mae"];
    return (
      `<p class="note">Measured by build ${esc(r.refitOf.of)} on its ${r.refitOf.testRows} held-out rows (this model, trained on every row, has none):</p>` +
      table(keys.map((k): [string, string] => [k, typeof e[k] === "number" ? num(e[k] as number) : "–"]))
    );
  }
  if (!m) return '<p class="muted">No held-out rows (test_fraction 0): nothing to score.</p>';
  const rows: [string, string][] =
    m.task === "classification"
      ? [
          ["accuracy", num(m.accuracy)],
          ["macro F1", num(m.macro_f1)],
          ["log-loss", num(m.log_loss)],
        ]
      : [
          ["R²", num(m.r2)],
          ["MSE", num(m.mse)],
          ["MAE", num(m.mae)],
        ];
  return `${table([...rows, ["held-out rows", String(m.n)]])}<p class="note">scikit-learn's definitions (accuracy_score, f1_score(average="macro"), log_loss with clipping at 1e-15; r2_score, mean_squared_error, mean_absolute_error).</p>`;
}

function specAndData(r: BuildReport): string {
  const d = r.dataset;
  const spec = Object.entries(r.spec)
    .filter(([k, v]) => v !== undefined && k !== "tags")
    .map(([k, v]): [string, string] => [k, `<code>${esc(typeof v === "object" ? JSON.stringify(v) : String(v))}</code>`]);
  const tags = Object.entries(r.tags);
  const types = d.featureTypes ? Object.entries(d.featureTypes).map(([t, n]) => `${n} ${t}`).join(", ") : "not recorded";
  const classes =
    d.task === "classification"
      ? [["classes", `${d.classes.length}: ${esc(d.classes.slice(0, 30).join(", "))}${d.classes.length > 30 ? ", …" : ""}`] as [string, string]]
      : [];
  const data = table([
    ["file", `<span class="path">${esc(r.spec.dataset)}</span>`],
    ["rows", `${d.nRows} (${d.trainRows} train, ${d.testRows} held out)`],
    ["features", `${d.nFeatures} (${esc(types)})`],
    ["missing cells", d.missingCells === undefined ? "not recorded" : String(d.missingCells)],
    ["label", `${esc(d.labelName)} (${d.task})`],
    ...classes,
    ["pack", `<code title="${esc(d.packKey)}">${esc(d.packHash.slice(0, 16))}…</code>`],
  ]);
  return `<div class="row"><div><h3>Dataset</h3>${data}</div><div><h3>Spec</h3>${table([...spec, ...(tags.length ? [["tags", esc(tags.map(([k, v]) => `${k}=${v}`).join(" "))] as [string, string]] : [])])}</div><div><h3>Held-out metrics</h3>${metricsTable(r)}</div></div>`;
}

function cards(r: BuildReport): string {
  const m = r.metrics;
  const e = r.refitOf?.metrics;
  const measured = (key: string) => (typeof e?.[key] === "number" ? num(e[key] as number) : "–");
  const headline = !m
    ? e
      ? r.dataset.task === "classification"
        ? [measured("accuracy"), `accuracy (held out, build ${r.refitOf!.of})`]
        : [measured("r2"), `R² (held out, build ${r.refitOf!.of})`]
      : ["–", "no held-out rows"]
    : m.task === "classification"
      ? [num(m.accuracy), "accuracy (held out)"]
      : [num(m.r2), "R² (held out)"];
  const items: [string, string][] = [
    [headline[0], headline[1]],
    ...(r.oob ? [[num(r.oob.score), `${r.oob.metric === "accuracy" ? "accuracy" : "R²"} out of bag (oob_score)`] as [string, string]] : []),
    [
      String(r.model.trees),
      `trees in ${r.groves.length} groves${r.missingGroves.length ? ` (${r.missingGroves.length} missing)` : ""}${r.extends ? ` (${r.groves.filter((g) => g.copied).length} copied)` : ""}`,
    ],
    [seconds(r.timings.totalMs), "submitted → report"],
    [bytes(r.model.bytes), `model, ${r.model.nodes} nodes`],
  ];
  if (r.cost.totals.billedGbS > 0) items.push([usd(r.cost.usd.total), "estimated AWS cost"]);
  return `<div class="cards">${items.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join("")}</div>`;
}

/** report.html of a build. */
export function renderBuild(r: BuildReport): string {
  const charts: Charts = {};
  const name = basename(r.spec.dataset);
  const parts: [string, string, string][] = [
    ["summary", "Spec and data", section("summary", "Spec, data and held-out metrics", specAndData(r))],
    ["trees", "Metric by trees", curveSection(r, charts)],
    ["confusion", "Confusion matrix", confusionSection(r, charts)],
    ["residuals", "Predicted vs actual", regressionSection(r, charts)],
    ["importances", "Importances", importanceSection(r, charts)],
    ["timeline", "Timeline", timelineSection(r, charts)],
    ["timings", "Timings and cost", timingsSection(r, charts)],
  ];
  const present = parts.filter(([, , html]) => html !== "");
  const copied = r.groves.filter((g) => g.copied);
  const extension = r.extends
    ? `<p>This build extends build ${esc(r.extends.buildId)} (${r.extends.trees} trees) to ${r.spec.n_estimators} trees with the same options and seed: ` +
      `${copied.length} of its groves were copied, ${r.groves.length - copied.length} trained here. The model is the one a fresh ${r.spec.n_estimators}-tree build gives.</p>`
    : "";
  const refit = r.refitOf
    ? `<p>This model is trained on all ${r.dataset.trainRows} rows, after build ${esc(r.refitOf.of)} (the same options, ${r.refitOf.testRows} rows held out) measured the held-out metrics shown here: they describe that build's model, trained on ${r.refitOf.trainRows} rows.</p>`
    : "";
  const header =
    `<h1>Canopy build ${esc(r.buildId)}: ${esc(name)}</h1>` +
    `<p>${esc(r.status)} · ${r.dataset.task} of “${esc(r.dataset.labelName)}” · submitted ${esc(time(r.createdAt))}, report ${esc(time(r.completedAt))}</p>` +
    extension +
    refit;
  return page({
    title: `Canopy ${r.buildId} · ${name}`,
    header,
    nav: present.map(([id, label]) => [id, label]),
    body: cards(r) + present.map(([, , html]) => html).join(""),
    charts,
    footer: `Written from report.json (v${r.v}) by Canopy. Charts: Observable Plot and d3 (ISC licence), inlined: this file needs no network.`,
  });
}
