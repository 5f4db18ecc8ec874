/** Small HTML helpers and the page shell shared by every kind of report. */
import { chartLibrary } from "./assets.ts";
import { BROWSER_SCRIPT } from "./browser.ts";

export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe inside <script type="application/json">: nothing in it can close the element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** A library's text inside <script>: only "</script" could end it early; none of the inlined files has it. */
function scriptText(file: string, text: string): string {
  if (/<\/script/i.test(text)) throw new Error(`${file} contains "</script" and cannot be inlined`);
  return text;
}

export function table(rows: [string, string][], cls = "kv"): string {
  return `<table class="${cls}"><tbody>${rows.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${v}</td></tr>`).join("")}</tbody></table>`;
}

export interface Column<T> {
  head: string;
  cell: (row: T) => string;
  /** A value to sort by when the shown text is not it (numbers with units, say). */
  sort?: (row: T) => number | string;
  numeric?: boolean;
}

/**
 * Rows a long sortable table shows at once; the page script pages through the rest (every row is in the page). Laying
 * out thousands of rows (a partitioned run's) made the page take seconds to open and to re-sort.
 */
export const PAGE_ROWS = 500;

/** A table whose columns sort on click (the page script wires every table.sortable, and pages a long one). */
export function sortableTable<T>(rows: T[], columns: Column<T>[], caption?: string): string {
  const head = columns.map((c) => `<th scope="col"${c.numeric ? ' class="num"' : ""}>${esc(c.head)}</th>`).join("");
  const body = rows
    .map(
      (r) =>
        `<tr>${columns
          .map((c) => {
            const cell = c.cell(r);
            // The script sorts by the cell's text when there is no data-sort: no need to repeat it.
            const key = c.sort ? esc(c.sort(r)) : cell;
            const sort = key !== cell ? ` data-sort="${key}"` : "";
            return `<td${c.numeric ? ' class="num"' : ""}${sort}>${cell}</td>`;
          })
          .join("")}</tr>`,
    )
    .join("");
  const attributes = rows.length > PAGE_ROWS ? `class="sortable paged" data-page-rows="${PAGE_ROWS}"` : 'class="sortable"';
  return `<table ${attributes}>${caption ? `<caption>${esc(caption)}</caption>` : ""}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function num(x: number | undefined | null, digits = 4): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return "–";
  return x.toFixed(digits);
}

export function seconds(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(s < 10 ? 2 : 1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function usd(x: number): string {
  return `$${x < 0.01 ? x.toFixed(6) : x.toFixed(4)}`;
}

/** A figure the page script fills with chart `id` of the page's specs. */
export function figure(id: string, caption: string, note = ""): string {
  return `<figure data-chart="${esc(id)}"><figcaption>${esc(caption)}</figcaption><div class="plot"></div>${note ? `<p class="note">${note}</p>` : ""}</figure>`;
}

export function section(id: string, title: string, body: string): string {
  return `<section id="${esc(id)}"><h2>${esc(title)}</h2>${body}</section>`;
}

const STYLE = `
:root { color-scheme: light; --ink: #1a202c; --muted: #5a6472; --line: #dde3ea; --accent: #2b6cb0; --bad: #c53030; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f7f9fb; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px 12px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 2px 0; color: var(--muted); }
nav { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { color: var(--accent); text-decoration: none; font-size: 13px; }
main { padding: 8px 28px 28px; max-width: 1040px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 18px; margin-top: 16px; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 4px 0 6px; color: var(--muted); }
.path { word-break: break-all; }
.nowrap { white-space: nowrap; }
.kv td { max-width: 340px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 6px 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure[data-drawn="false"] .plot { color: var(--bad); }
.note, .muted { color: var(--muted); font-size: 13px; max-width: 900px; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 8px; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
.kv th { color: var(--muted); font-weight: normal; padding-right: 18px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
table.paged:not(.paging) > tbody > tr:nth-child(n+${PAGE_ROWS + 1}) { display: none; }
.pager { display: flex; gap: 10px; align-items: center; font-size: 13px; color: var(--muted); margin: 2px 0 8px; }
.pager button { font: inherit; color: var(--accent); background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 2px 8px; cursor: pointer; }
.pager button:disabled { color: var(--muted); cursor: default; }
caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
code { font-size: 12px; background: #eef2f6; padding: 1px 4px; border-radius: 3px; }
.bad { color: var(--bad); }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
@media print { body { background: #fff; } section { break-inside: avoid; } }
`;

/**
 * The page: styles, the content, the chart specs as JSON, then d3, Plot and the page script, all inline. The
 * content security policy forbids every fetch (scripts and styles must be inline, images data: URLs), so the
 * page cannot reach the network even by accident.
 */
export function page(o: { title: string; header: string; nav: [string, string][]; body: string; charts: Record<string, unknown>; footer: string }): string {
  const library = chartLibrary();
  const csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(o.title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${STYLE}</style>`,
    "</head>",
    "<body>",
    `<header>${o.header}<nav>${o.nav.map(([id, label]) => `<a href="#${esc(id)}">${esc(label)}</a>`).join("")}</nav></header>`,
    `<main>${o.body}</main>`,
    `<footer>${o.footer}</footer>`,
    `<script type="application/json" id="canopy-charts">${scriptJson(o.charts)}</script>`,
    ...library.scripts.map((s) => `<script>${scriptText(s.file, s.text)}</script>`),
    `<script>${BROWSER_SCRIPT}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
