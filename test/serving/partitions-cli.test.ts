// A partitioned model through the real CLI: predict, inspect, promote, models and serve, on the embedded store and
// as an exported directory. The partitions are ordinary builds trained by `canopy train` (penguins by island).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportPartitioned, makePartitioned, type MadePartitions } from "./partitions.ts";
import { canopy, fixturePath, serveInBackground } from "./support.ts";

const PENGUINS = fixturePath("penguins.csv").pathname;
const RUN = "p-00000000000000a1";
let dir: string;
let made: MadePartitions;
let table: string[];
/** What each row of the table gets from its own island's build, predicted alone (the single-model path). */
let expected: string[];

const lines = (text: string) => text.trimEnd().split("\n");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "canopy-partitions-cli-"));
  made = await makePartitioned(dir, PENGUINS, { label: "Species", partitionBy: "Island", runId: RUN, args: ["--trees", "8", "--grove-size", "4", "--seed", "3"] });
  table = lines(await readFile(PENGUINS, "utf8"));
  const island = table[0]!.split(",").indexOf("Island");
  const perIsland = new Map<string, string[]>();
  for (const [key, file] of made.files) {
    const run = await canopy(["predict", "--model", made.model.partitions[key]!.build, file], dir);
    expect(run.code, run.stderr).toBe(0);
    perIsland.set(key, lines(run.stdout).slice(1));
  }
  const next = new Map<string, number>();
  expected = table.slice(1).map((line) => {
    const key = line.split(",")[island]!;
    const i = next.get(key) ?? 0;
    next.set(key, i + 1);
    return perIsland.get(key)![i]!;
  });
}, 180_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The table with the island of some rows (0-based data rows) replaced. */
async function withIslands(name: string, islands: Record<number, string>): Promise<string> {
  const island = table[0]!.split(",").indexOf("Island");
  const out = table.map((line, i) => {
    if (i === 0 || !(i - 1 in islands)) return line;
    const cells = line.split(",");
    cells[island] = islands[i - 1]!;
    return cells.join(",");
  });
  const path = join(dir, name);
  await writeFile(path, `${out.join("\n")}\n`);
  return path;
}

describe("canopy predict with a partitioned model", () => {
  it("routes every row to its island's model: the same answers as each build on its own rows, in the table's order", async () => {
    const run = await canopy(["predict", "--model", RUN, PENGUINS], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe("");
    expect(lines(run.stdout)).toEqual(["Species", ...expected]);
    expect(new Set(expected)).toEqual(new Set(["Adelie", "Chinstrap", "Gentoo"]));
  });

  it("an unknown or empty island fails the run (exit 2) naming the values and rows, unless --skip-unknown", async () => {
    const path = await withIslands("unknown.csv", { 3: "Anvers", 7: "", 8: "Anvers" });
    const run = await canopy(["predict", "--model", RUN, path], dir);
    expect([run.code, run.stdout]).toEqual([2, ""]);
    expect(run.stderr).toBe('canopy: error: no model for "Island" "Anvers" (row 5), an empty value (row 9): 3 rows in all, and the partitioned model has no fallback\n');

    const skipped = await canopy(["predict", "--model", RUN, path, "--skip-unknown"], dir);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(lines(skipped.stdout)).toEqual(["Species", ...expected.map((p, i) => ([3, 7, 8].includes(i) ? "" : p))]);
    expect(skipped.stderr).toBe(
      'canopy: warning: no model for "Island" "Anvers" (row 5), an empty value (row 9): 3 rows in all; their predictions are empty (--skip-unknown)\n',
    );
  });

  it("--proba gives one column per class any partition knows", async () => {
    const run = await canopy(["predict", "--model", RUN, PENGUINS, "--proba"], dir);
    expect(run.code, run.stderr).toBe(0);
    const out = lines(run.stdout);
    expect(out[0]).toBe("Adelie,Chinstrap,Gentoo");
    const classes = out[0]!.split(",");
    out.slice(1).forEach((line, i) => {
      const p = line.split(",").map(Number);
      expect(classes[p.indexOf(Math.max(...p))]).toBe(expected[i]);
    });
  });

  it("an exported directory predicts the same; a partition file that is not the manifest's fails naming it (exit 1)", async () => {
    const out = join(dir, "exported");
    await exportPartitioned(dir, made, out);
    const run = await canopy(["predict", "--model", out, PENGUINS], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(lines(run.stdout)).toEqual(["Species", ...expected]);
    await writeFile(join(out, "partitions", "00001.canopy"), await readFile(join(out, "partitions", "00000.canopy")));
    const bad = await canopy(["predict", "--model", out, PENGUINS], dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^canopy: error: .*exported\/partitions\/00001\.canopy is not the model the partitioned model names \(\d+ bytes, sha256 [0-9a-f]{12}…\): it was changed or replaced\n$/);
  });

  it("a partitioned run that is not in the store is a usage error", async () => {
    const run = await canopy(["predict", "--model", "p-00000000000000ff", PENGUINS], dir);
    expect([run.code, run.stderr]).toEqual([2, "canopy: error: partitioned run p-00000000000000ff has no model in .canopy (not found, or not finished)\n"]);
  });
});

describe("canopy inspect, promote and models with a partitioned model", () => {
  it("inspect lists partitions, rows, sizes, fallback, skipped and features (and --json)", async () => {
    const json = await canopy(["inspect", RUN, "--json"], dir);
    expect(json.code, json.stderr).toBe(0);
    const s = JSON.parse(json.stdout) as Record<string, unknown>;
    const parts = Object.values(made.model.partitions);
    expect(s).toMatchObject({
      kind: "partitioned",
      runId: RUN,
      task: "classification",
      partitionBy: "Island",
      features: made.model.features,
      rows: 344,
      bytes: parts.reduce((n, p) => n + p.bytes, 0),
      fallback: null,
      skipped: [],
    });
    expect(s.partitions).toEqual(
      ["Biscoe", "Dream", "Torgersen"].map((v) => ({ value: v, build: made.model.partitions[v]!.build, rows: made.model.partitions[v]!.rows, bytes: made.model.partitions[v]!.bytes })),
    );
    const text = await canopy(["inspect", RUN], dir);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("partition by  Island");
    expect(text.stdout).toContain("partitions    3 (344 rows)");
    expect(text.stdout).toContain("fallback      none: rows of other values are refused");
    expect(text.stdout).toMatch(new RegExp(`\\n  Dream +${made.model.partitions.Dream!.build} +124 +`));
  });

  it("promote points an alias at the run (the feature check reads its manifest); predict and models follow the alias", async () => {
    const single = made.model.partitions.Dream!.build;
    expect((await canopy(["promote", single, "--alias", "islands"], dir)).code).toBe(0);
    const refused = await canopy(["promote", RUN, "--alias", "islands"], dir);
    expect([refused.code, refused.stderr]).toEqual([
      2,
      `canopy: error: alias islands serves ${single}; ${RUN}'s model adds "Island", so requests made for islands would be refused: use --force to promote it anyway\n`,
    ]);
    const forced = await canopy(["promote", RUN, "--alias", "islands", "--force"], dir);
    expect([forced.code, forced.stdout]).toEqual([0, `islands -> ${RUN} (was ${single})\n`]);
    const predicted = await canopy(["predict", "--model", "islands", PENGUINS], dir);
    expect(lines(predicted.stdout)).toEqual(["Species", ...expected]);

    const models = await canopy(["models", "--json"], dir);
    const rows = JSON.parse(models.stdout) as { buildId: string; partitions?: number; bytes?: number; aliases: string[] }[];
    expect(rows.find((r) => r.buildId === RUN)).toMatchObject({ partitions: 3, bytes: Object.values(made.model.partitions).reduce((n, p) => n + p.bytes, 0), aliases: ["islands"] });
    const listed = await canopy(["models"], dir);
    expect(listed.stdout).toMatch(new RegExp(`${RUN} +COMPLETED +[0-9-]+ [0-9:]+ +3 partitions `));
  });
});

describe("canopy serve with a partitioned model", () => {
  it("answers a request mixing three islands and an unknown one: 400 naming it, or with skip_unknown the three predictions and an errors entry", async () => {
    const server = await serveInBackground(["--model", RUN], dir);
    try {
      expect(server.stderr()).toContain(`serving partitioned run ${RUN}: classification, 3 partitions by Island, 5 features`);
      const island = table[0]!.split(",").indexOf("Island");
      // Rows 0 (Torgersen), 200 (Dream), 250 (Biscoe) and one of an island without a model, as CSV.
      const picked = [0, 200, 250].map((i) => table[i + 1]!);
      const unknown = table[2]!.split(",");
      unknown[island] = "Anvers";
      const csv = [table[0], picked[0], picked[1], unknown.join(","), picked[2]].join("\n");
      const ask = (query: string) => fetch(`${server.url}/predict${query}`, { method: "POST", headers: { "content-type": "text/csv" }, body: csv });
      const refused = await ask("");
      expect(refused.status).toBe(400);
      expect(await refused.json()).toEqual({ error: 'no model for "Island" "Anvers" (row 4): 1 row in all, and the partitioned model has no fallback' });
      const answered = await ask("?skip_unknown=1");
      expect(answered.status).toBe(200);
      const body = (await answered.json()) as { predictions: (string | null)[]; errors: unknown[] };
      expect(body.predictions).toEqual([expected[0], expected[200], null, expected[250]]);
      expect(body.errors).toEqual([{ row: 2, value: "Anvers", error: 'no model for Island "Anvers", and no fallback model' }]);
      // The --remote client sends the table's rows as records: what a local predict prints.
      const local = await canopy(["predict", "--model", RUN, PENGUINS], dir);
      const remote = await canopy(["predict", "--remote", server.url, PENGUINS], dir);
      expect(remote.code, remote.stderr).toBe(0);
      expect(remote.stdout).toBe(local.stdout);
    } finally {
      await server.stop();
    }
  });

  it("serves an exported directory (with a tiny --cache-mb), and refuses a p- id that is not in the store at start (exit 2)", async () => {
    const out = join(dir, "exported-serve");
    await exportPartitioned(dir, made, out);
    // A cache budget below one partition's model: each request still answers, reloading as it goes.
    const server = await serveInBackground(["--model", out, "--cache-mb", "0.001"], dir);
    try {
      for (const rows of [[200], [0, 250, 200]]) {
        const res = await fetch(`${server.url}/`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ records: rows.map(recordOf) }) });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { predictions: string[] }).predictions).toEqual(rows.map((i) => expected[i]));
      }
    } finally {
      await server.stop();
    }
    const missing = await canopy(["serve", "--port", "0", "--model", "p-00000000000000ff"], dir);
    expect([missing.code, missing.stderr]).toEqual([2, "canopy: error: partitioned run p-00000000000000ff has no model in .canopy (not found, or not finished)\n"]);
  });
});

/** Data row `i` of the table as a JSON record (numbers as numbers, NA as null). */
function recordOf(i: number): Record<string, string | number | null> {
  const header = table[0]!.split(",");
  const cells = table[i + 1]!.split(",");
  return Object.fromEntries(header.map((h, c) => [h, cells[c] === "NA" || cells[c] === "" ? null : Number.isFinite(Number(cells[c])) ? Number(cells[c]) : cells[c]!]));
}
