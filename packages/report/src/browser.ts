/**
 * The script report.html runs after d3 and Observable Plot: it turns each chart spec (charts.ts, embedded as
 * JSON) into a Plot chart inside its figure. Plain ES2017 in a string, inlined as is: it is not compiled, so
 * it must not rely on anything a bundler would add (a function's toString() under esbuild's keepNames would).
 * Every label, tooltip and number format is prepared in TypeScript; this only maps specs to Plot marks.
 * Each mark group carries an aria-description (curve-point, confusion-cell, grove, ...) that the browser test counts
 * its elements by (Plot sets the group's aria-label to the mark type; ariaLabel is a per-element channel).
 */
export const BROWSER_SCRIPT = String.raw`(function () {
  "use strict";
  var BLUE = "#2b6cb0";
  var specs = JSON.parse(document.getElementById("canopy-charts").textContent);

  function bandHeight(n) { return 40 + n * 26; }

  var draw = {
    curve: function (c) {
      return Plot.plot({
        width: 460, height: 250, marginLeft: 60, marginRight: 16,
        x: { label: "trees", grid: true, domain: [0, c.maxTrees] },
        y: { label: c.label, grid: true, nice: true },
        marks: [
          Plot.line(c.points, { x: "trees", y: "value", stroke: BLUE, ariaDescription: "curve-line" }),
          Plot.dot(c.points, { x: "trees", y: "value", r: c.points.length > 150 ? 1.5 : 2.5, fill: BLUE, title: "title", ariaDescription: "curve-point" })
        ]
      });
    },

    confusion: function (c) {
      var k = c.classes.length;
      var size = Math.max(12, Math.min(42, Math.floor(480 / k)));
      var marks = [Plot.cell(c.cells, { x: "predicted", y: "actual", fill: "rate", inset: 0.5, title: "title", ariaDescription: "confusion-cell" })];
      if (k <= 20) {
        var dark = c.cells.filter(function (d) { return d.count > 0 && d.rate > 0.5; });
        var light = c.cells.filter(function (d) { return d.count > 0 && d.rate <= 0.5; });
        marks.push(Plot.text(dark, { x: "predicted", y: "actual", text: "count", fill: "white", ariaDescription: "confusion-count" }));
        marks.push(Plot.text(light, { x: "predicted", y: "actual", text: "count", fill: "black", ariaDescription: "confusion-count" }));
      }
      return Plot.plot({
        width: size * k + 110, height: size * k + 80, marginLeft: 90, marginBottom: 60,
        x: { label: "predicted", domain: c.classes, tickRotate: k > 10 ? -45 : 0 },
        y: { label: "actual", domain: c.classes },
        color: { type: "linear", scheme: "blues", domain: [0, 1], label: "share of the actual class", legend: true },
        marks: marks
      });
    },

    bars: function (c) {
      return Plot.plot({
        width: 560, height: bandHeight(c.bars.length), marginLeft: c.marginLeft || 170, marginRight: 90,
        x: { label: c.unit, grid: true, nice: true },
        y: { label: null, domain: c.bars.map(function (d) { return d.label; }) },
        marks: [
          Plot.barX(c.bars, { x: "value", y: "label", fill: c.color || BLUE, title: "title", ariaDescription: c.mark }),
          Plot.text(c.bars, { x: "value", y: "label", text: "text", dx: 4, textAnchor: "start", ariaDescription: c.mark + "-label" }),
          Plot.ruleX([0])
        ]
      });
    },

    scatter: function (c) {
      return Plot.plot({
        width: 420, height: 380, marginLeft: 60,
        x: { label: c.xLabel, grid: true, domain: c.xDomain },
        y: { label: c.yLabel, grid: true, domain: c.yDomain },
        marks: [
          c.diagonal
            ? Plot.link([c.diagonal], { x1: "x1", y1: "y1", x2: "x2", y2: "y2", stroke: "#888", strokeDasharray: "4 3" })
            : Plot.ruleY([0], { stroke: "#888", strokeDasharray: "4 3" }),
          Plot.dot(c.points, { x: "x", y: "y", r: 2.5, fill: BLUE, fillOpacity: 0.65, title: "title", ariaDescription: c.mark })
        ]
      });
    },

    param: function (c) {
      var best = c.points.filter(function (d) { return d.best; });
      return Plot.plot({
        width: 420, height: 280, marginLeft: 60, marginBottom: 44,
        x: c.categorical ? { label: c.name, domain: c.domain, padding: 0.3 } : { label: c.name, grid: true, nice: true },
        y: { label: c.yLabel, grid: true, nice: true },
        marks: [
          Plot.ruleX(c.points, { x: "x", y1: "lo", y2: "hi", stroke: BLUE, strokeOpacity: 0.35, ariaDescription: "param-spread" }),
          Plot.dot(c.points, { x: "x", y: "y", r: 3.5, fill: BLUE, title: "title", ariaDescription: "param-point" }),
          Plot.dot(best, { x: "x", y: "y", r: 7, stroke: "#c53030", strokeWidth: 2, fill: "none", title: "title", ariaDescription: "param-best" })
        ]
      });
    },

    partitions: function (c) {
      return Plot.plot({
        width: 640, height: 380, marginLeft: 60, marginRight: 20, inset: 8,
        x: { type: "log", label: c.xLabel, grid: true },
        y: { label: c.yLabel, grid: true, nice: true },
        marks: [
          Plot.ruleY(c.mean, { y: "y", stroke: "#888", strokeDasharray: "4 3", title: "title", ariaDescription: "partition-mean" }),
          Plot.dot(c.points, { x: "x", y: "y", r: c.points.length > 500 ? 1.8 : 3, fill: BLUE, fillOpacity: 0.6, title: "title", ariaDescription: "partition-point" }),
          Plot.dot(c.fallback, { x: "x", y: "y", r: 6, stroke: "#c53030", strokeWidth: 2, fill: "none", title: "title", ariaDescription: "fallback-point" })
        ]
      });
    },

    timeline: function (c) {
      var waits = c.segments.filter(function (d) { return d.stage === "queued"; });
      var work = c.segments.filter(function (d) { return d.stage !== "queued"; });
      return Plot.plot({
        width: 940, height: 70 + c.rows.length * 30, marginLeft: 120, marginRight: 20,
        x: { label: "seconds since the build was submitted", grid: true, domain: c.xDomain },
        y: { label: null, domain: c.rows, padding: 0.08 },
        color: { domain: c.stages, range: c.colors, legend: true },
        marks: [
          // Waiting in the queue is drawn as a thin strip under the row: the worker was busy with other groves.
          Plot.barX(waits, { x1: "start", x2: "end", y: "row", fill: "stage", insetTop: 19, fillOpacity: 0.7, title: "title", ariaDescription: "grove-wait" }),
          Plot.barX(work, { x1: "start", x2: "end", y: "row", fill: "stage", insetBottom: 8, title: "title", ariaDescription: "grove-stage" }),
          Plot.barX(c.groves, { x1: "started", x2: "end", y: "row", fill: "none", stroke: "#1a202c", strokeOpacity: 0.45, insetBottom: 8, title: "title", ariaDescription: "grove" }),
          Plot.barX(c.groves.filter(function (d) { return d.straggler; }), { x1: "started", x2: "end", y: "row", fill: "none", stroke: "#c53030", strokeWidth: 2.5, insetBottom: 8, title: "title", ariaDescription: "straggler" }),
          Plot.text(c.groves.filter(function (d) { return d.attempt > 1; }), { x: "end", y: "row", text: "retry", dx: 3, dy: -4, textAnchor: "start", fill: "#c53030", fontWeight: "bold", ariaDescription: "retry" }),
          Plot.barX(c.aggregation, { x1: "start", x2: "end", y: "row", fill: "stage", insetBottom: 8, title: "title", ariaDescription: "aggregation" }),
          c.labels ? Plot.text(c.groves, { x: "middle", y: "row", text: "label", dy: -4, fill: "white", fontSize: 9, ariaDescription: "grove-number" }) : null
        ]
      });
    }
  };

  var collator = new Intl.Collator(undefined, { numeric: true });

  function button(text) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    return b;
  }

  // A long table (class "paged", every row in the page) shows data-page-rows rows at a time under a bar to page
  // through them or show them all. Returns what a sort calls: back to the first page.
  function pager(table) {
    var size = parseInt(table.getAttribute("data-page-rows"), 10);
    var body = table.tBodies[0];
    var bar = document.createElement("div");
    bar.className = "pager";
    var prev = button("‹ previous"), next = button("next ›"), all = button(""), label = document.createElement("span");
    [prev, label, next, all].forEach(function (e) { bar.appendChild(e); });
    table.parentNode.insertBefore(bar, table.nextSibling);
    var first = 0, showAll = false;
    function show() {
      var n = body.rows.length;
      var end = showAll ? n : Math.min(n, first + size);
      Array.prototype.forEach.call(body.rows, function (row, i) { row.hidden = !showAll && (i < first || i >= end); });
      label.textContent = showAll ? "all " + n + " rows" : "rows " + (first + 1) + "–" + end + " of " + n;
      prev.disabled = showAll || first === 0;
      next.disabled = showAll || end >= n;
      all.textContent = showAll ? "show " + size + " at a time" : "show all " + n;
    }
    prev.addEventListener("click", function () { first = Math.max(0, first - size); show(); });
    next.addEventListener("click", function () { first += size; show(); });
    all.addEventListener("click", function () { showAll = !showAll; first = 0; show(); });
    show();
    table.classList.add("paging");
    return function () { first = 0; show(); };
  }

  function sortable(table, sorted) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.title = "sort";
      // Each row's key is read once (a table may have thousands of rows: a partitioned run's), the rows are put
      // back in one fragment, and words compare with numbers in them by value ("store-9" before "store-10").
      function sort() {
        var body = table.tBodies[0];
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var keyed = Array.prototype.map.call(body.rows, function (row, i) {
          var cell = row.cells[col];
          var text = cell.getAttribute("data-sort") || cell.textContent;
          return { row: row, text: text, n: parseFloat(text), i: i };
        });
        keyed.sort(function (a, b) {
          var cmp = !isNaN(a.n) && !isNaN(b.n) ? a.n - b.n : collator.compare(a.text, b.text);
          return dir * cmp || a.i - b.i;
        });
        var rows = document.createDocumentFragment();
        keyed.forEach(function (k) { rows.appendChild(k.row); });
        body.appendChild(rows);
        if (sorted) sorted();
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("figure[data-chart]"), function (figure) {
    var spec = specs[figure.getAttribute("data-chart")];
    var target = figure.querySelector(".plot");
    try {
      target.appendChild(draw[spec.kind](spec));
      figure.setAttribute("data-drawn", "true");
    } catch (err) {
      figure.setAttribute("data-drawn", "false");
      target.textContent = "This chart could not be drawn: " + err.message;
      console.error(err);
    }
  });
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    sortable(table, table.classList.contains("paged") ? pager(table) : null);
  });
})();
`;
