/** The report of a study: its candidates ranked, their score against each searched parameter, the best's builds. */
import { scoreOf, showParams, type ParamValue, type StudyCandidate, type StudyReport } from "@canopy/core";
import { esc, figure, num, page, section, seconds, sortableTable, table, usd, type Column } from "./html.ts";

type Charts = Record<string, Record<string, unknown>>;

function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** Out of bag: one score per candidate, its OOB score; else the mean over its folds. */
const over = (r: StudyReport) => (r.spec.oob ? "out of bag" : `over ${r.cv} folds`);

const label = (v: ParamValue) => (v === null ? "None" : String(v));

/** The parameters the study searched, in the candidates' order (sorted names, as sklearn's ParameterGrid). */
function searched(r: StudyReport): string[] {
  return [...new Set(r.candidates.flatMap((c) => Object.keys(c.params)))].sort();
}

/**
 * One chart per searched parameter: each candidate's mean fold score (a dot) and its spread (mean ± std, a rule).
 * Numbers only: a linear axis; anything else (words, None, booleans, a mix): one band per value, in the order the
 * grid lists them.
 */
function paramCharts(r: StudyReport, charts: Charts): string {
  const names = searched(r);
  const figures = names.map((name) => {
    const values = r.candidates.map((c) => c.params[name] ?? null);
    const numeric = values.every((v) => typeof v === "number");
    const ok = r.candidates.filter((c) => Number.isFinite(c.mean_test_score));
    const id = `param-${name}`;
    charts[id] = {
      kind: "param",
      name,
      yLabel: `mean ${r.scoring} ${over(r)}`,
      categorical: !numeric,
      domain: numeric ? undefined : [...new Set(values.map(label))],
      points: ok.map((c) => ({
        x: numeric ? (c.params[name] as number) : label(c.params[name] ?? null),
        y: c.mean_test_score,
        lo: c.mean_test_score - c.std_test_score,
        hi: c.mean_test_score + c.std_test_score,
        best: c.rank_test_score === 1,
        title: `${showParams(c.params)}: ${r.scoring} ${num(c.mean_test_score)} ± ${num(c.std_test_score)} (rank ${c.rank_test_score})`,
      })),
    };
    return figure(id, `${r.scoring} against ${name}`, numeric ? "" : "One band per value; each dot is a candidate (the others' values differ).");
  });
  return section("params", "Score against each parameter", `<div class="row">${figures.join("")}</div>`);
}

function rankedTable(r: StudyReport): string {
  const names = searched(r);
  const columns: Column<StudyCandidate>[] = [
    { head: "rank", cell: (c) => String(c.rank_test_score), numeric: true },
    { head: `mean ${r.scoring}`, cell: (c) => num(c.mean_test_score), sort: (c) => (Number.isFinite(c.mean_test_score) ? c.mean_test_score : -Infinity), numeric: true },
    { head: "std", cell: (c) => num(c.std_test_score), numeric: true },
    ...names.map((n): Column<StudyCandidate> => ({ head: n, cell: (c) => esc(label(c.params[n] ?? null)) })),
    ...Array.from({ length: r.spec.oob ? 0 : r.cv }, (_, k): Column<StudyCandidate> => ({ head: `fold ${k}`, cell: (c) => num(c.split_test_scores[k]), numeric: true })),
    { head: "status", cell: (c) => (c.status === "FAILED" ? `<span class="bad" title="${esc(c.error ?? "")}">FAILED</span>` : "COMPLETED") },
    { head: "trees", cell: (c) => String(c.trees), numeric: true },
    { head: "time", cell: (c) => seconds(c.timeMs), sort: (c) => c.timeMs, numeric: true },
    { head: "cost", cell: (c) => usd(c.usd), sort: (c) => c.usd, numeric: true },
  ];
  const rows = [...r.candidates].sort((a, b) => a.rank_test_score - b.rank_test_score || a.index - b.index);
  return section(
    "ranking",
    "Candidates ranked",
    sortableTable(
      rows,
      columns,
      r.spec.oob
        ? `${r.candidates.length} candidates, each scored by its out-of-bag rows (scikit-learn 1.9.1's oob_score_; rank_test_score: ties share the lowest rank)`
        : `${r.candidates.length} candidates, ${r.cv} folds each (scikit-learn 1.9.1's rank_test_score: by mean fold score, ties share the lowest rank)`,
    ),
  );
}

/** Successive halving: each round's trees, candidates and the best there. */
function roundsSection(r: StudyReport): string {
  if (!r.rounds) return "";
  const rows = r.rounds.map((round) => {
    const best = [...round.candidates].sort((a, b) => a.rank_test_score - b.rank_test_score || a.index - b.index)[0];
    return { round, best };
  });
  return section(
    "rounds",
    "Rounds of successive halving",
    sortableTable(
      rows,
      [
        { head: "round", cell: (x) => String(x.round.round), numeric: true },
        { head: "trees", cell: (x) => String(x.round.trees), numeric: true },
        { head: "candidates", cell: (x) => String(x.round.candidates.length), numeric: true },
        { head: `best mean ${r.scoring}`, cell: (x) => num(x.best?.mean_test_score), numeric: true },
        { head: "best there", cell: (x) => esc(x.best ? showParams(x.best.params) : "–") },
      ],
      `Each round keeps the best 1/${r.spec.halving?.factor ?? 3} and extends their builds with more trees (the trees already trained are copied, not retrained)`,
    ),
  );
}

function bestSection(r: StudyReport): string {
  // best_index_ is the candidate's index; with halving the last round's candidates are a few of them.
  const best = r.candidates.find((c) => c.index === r.best_index_)!;
  const links = best.buildIds
    .map((id, k) => `<li>${r.spec.oob ? "build" : `fold ${k}`}: <a href="../../builds/${esc(id)}/report.html">${esc(id)}</a> (${r.scoring} ${num(best.split_test_scores[k])})</li>`)
    .join("");
  return section(
    "best",
    "Best candidate",
    table([
      ["best_params_", esc(showParams(r.best_params_))],
      [`best_score_ (${r.scoring})`, `${num(r.best_score_)} ± ${num(best.std_test_score)}`],
    ]) +
      (r.spec.oob
        ? `<p class="note">Its build (trained on the training rows, scored by the rows each tree's bootstrap left out; the held-out test split was not used to choose):</p><ul>${links}</ul>`
        : `<p class="note">Its fold builds (each trained on the other folds, scored on its own; the held-out test split was not used to choose):</p><ul>${links}</ul>`),
  );
}

/** The final model (refit): the best parameters built over the training rows, scored once on the held-out rows. */
function finalSection(r: StudyReport): string {
  const f = r.final;
  if (!f) return "";
  const metrics = Object.entries(f.metrics ?? {}).filter(([, v]) => typeof v === "number") as [string, number][];
  return section(
    "final",
    "Final model",
    table([
      ["build", `<a href="../../builds/${esc(f.buildId)}/report.html">${esc(f.buildId)}</a>`],
      ["trained on", `${f.trainRows} training rows (every fold), with best_params_`],
      ["tested on", f.testRows > 0 ? `${f.testRows} held-out rows, used for nothing else` : "nothing held out (test fraction 0)"],
      ...metrics.map(([k, v]): [string, string] => [`test ${esc(k)}`, num(v)]),
      ["model", `${f.model.trees} trees, ${f.model.nodes} nodes, ${f.model.bytes} bytes`],
    ]) + `<p class="note">scikit-learn's refit=True: the model to ship. Its held-out scores estimate how it does on new rows; the ranking above chose it without them.</p>`,
  );
}

function specSection(r: StudyReport): string {
  const { dataset, ...fixed } = r.spec.base;
  const space = r.spec.grid
    ? Object.entries(r.spec.grid).map(([k, v]) => `${k} ∈ {${v.map(label).join(", ")}}`).join("; ")
    : `${r.spec.random!.n_iter} random draws of ${Object.keys(r.spec.random!.params).join(", ")}`;
  return section(
    "spec",
    "Search",
    table([
      ["dataset", esc(dataset)],
      ["task", esc(r.task)],
      ["search space", esc(space)],
      ["scoring", `${esc(r.scoring)} (greater is better)`],
      r.spec.oob
        ? ["scored", "out of bag: one build per candidate over the training rows, each row predicted by the trees whose bootstrap left it out"]
        : ["folds", `${r.cv} (${r.task === "classification" ? "StratifiedKFold" : "KFold"}, no shuffling, on the training rows)`],
      ["fixed options", `<code>${esc(JSON.stringify(fixed))}</code>`],
    ]),
  );
}

function cards(r: StudyReport): string {
  const items: [string, string][] = [
    [num(r.best_score_), `best mean ${r.scoring}`],
    ...(r.final && r.final.testRows > 0 ? ([[num(scoreOf(r.scoring, r.final.metrics)), `final model's test ${r.scoring}`]] as [string, string][]) : []),
    r.spec.oob ? [String(r.candidates.length), "candidates, scored out of bag"] : [`${r.candidates.length} × ${r.cv}`, "candidates × folds"],
    [String(r.builds.total), `builds${r.builds.failed ? ` (${r.builds.failed} failed)` : ""}`],
    [seconds(r.completedAt - r.createdAt), "submitted → ranked"],
  ];
  if (r.cost.billedGbS > 0) items.push([usd(r.cost.usd), "estimated AWS cost"]);
  return `<div class="cards">${items.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join("")}</div>`;
}

/** report.html of a study. */
export function renderStudy(r: StudyReport): string {
  const charts: Charts = {};
  const name = (r.spec.base.dataset.split(/[\\/]/).pop() || r.spec.base.dataset);
  const parts: [string, string][] = [
    ["ranking", rankedTable(r)],
    ["params", paramCharts(r, charts)],
    ["rounds", roundsSection(r)],
    ["best", bestSection(r)],
    ["final", finalSection(r)],
    ["spec", specSection(r)],
  ];
  return page({
    title: `Canopy study ${r.studyId} · ${name}`,
    header:
      `<h1>Canopy study ${esc(r.studyId)}: ${esc(name)}</h1>` +
      `<p>${esc(r.status)} · ${r.task} · best ${esc(showParams(r.best_params_))} · submitted ${esc(time(r.createdAt))}, ranked ${esc(time(r.completedAt))}</p>`,
    nav: [
      ["ranking", "Ranking"],
      ["params", "Score by parameter"],
      ...(r.rounds ? ([["rounds", "Rounds"]] as [string, string][]) : []),
      ["best", "Best"],
      ...(r.final ? ([["final", "Final model"]] as [string, string][]) : []),
      ["spec", "Search"],
    ],
    body: cards(r) + parts.map(([, html]) => html).join(""),
    charts,
    footer: `Written from studies/${esc(r.studyId)}/report.json (v${r.v}) by Canopy. Charts: Observable Plot and d3 (ISC licence), inlined: this file needs no network.`,
  });
}
