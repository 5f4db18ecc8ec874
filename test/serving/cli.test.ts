// canopy promote / models / serve / predict --remote through the real CLI, on the embedded store.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newBuildRecord } from "@canopy/core";
import { DiskLedger } from "@canopy/runtime-local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canopy, fixturePath, noCredentials, serveInBackground } from "./support.ts";

const IRIS = fixturePath("iris.csv").pathname;
const DIABETES = fixturePath("diabetes.csv").pathname;
let dir: string;
let first: string;
let second: string;
let regression: string;
const pending = "b-00000000000000aa";

async function trainJson(args: string[]): Promise<string> {
  const run = await canopy(["train", ...args, "--json"], dir);
  expect(run.code, run.stderr).toBe(0);
  return (JSON.parse(run.stdout) as { buildId: string }).buildId;
}

function expectUsage(run: { code: number | null; stdout: string; stderr: string }, message: string | RegExp) {
  expect(run.code, run.stderr).toBe(2);
  expect(run.stdout).toBe("");
  const lines = run.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  if (typeof message === "string") expect(lines[0]).toBe(`canopy: error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "canopy-serving-cli-"));
  first = await trainJson([IRIS, "--trees", "12", "--grove-size", "4", "--seed", "1"]);
  second = await trainJson([IRIS, "--trees", "6", "--grove-size", "3", "--seed", "2"]);
  regression = await trainJson([DIABETES, "--trees", "5", "--grove-size", "5", "--max-depth", "5"]);
  // A build that never finished, straight into the ledger.
  await new DiskLedger(join(dir, ".canopy"), { fsync: false }).create(newBuildRecord({ buildId: pending, total: 2, tolerated: 0, now: Date.now() }));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("canopy promote and canopy models", () => {
  it("promote points an alias at a completed build and says what it replaced", async () => {
    const a = await canopy(["promote", first, "--alias", "production"], dir);
    expect([a.code, a.stdout]).toEqual([0, `production -> ${first}\n`]);
    const b = await canopy(["promote", second, "--alias", "production"], dir);
    expect(b.stdout).toBe(`production -> ${second} (was ${first})\n`);
    const c = await canopy(["promote", first, "--alias", "staging", "--json"], dir);
    expect(JSON.parse(c.stdout)).toMatchObject({ alias: "staging", buildId: first });
    expect(JSON.parse(await readFile(join(dir, ".canopy", "aliases", "production.json"), "utf8"))).toMatchObject({ buildId: second, previous: first });
  });

  it("promote refuses builds that are unknown or not COMPLETED, and bad names (exit 2, one line)", async () => {
    expectUsage(await canopy(["promote", pending, "--alias", "production"], dir), `build ${pending} is PENDING; only a COMPLETED build can be promoted`);
    expectUsage(await canopy(["promote", "b-0000000000000001", "--alias", "production"], dir), "build b-0000000000000001 not found in .canopy");
    expectUsage(await canopy(["promote", "latest", "--alias", "production"], dir), 'invalid build id "latest" (expected b- and 16 hex digits)');
    expectUsage(await canopy(["promote", first, "--alias", "prod/eu"], dir), /^canopy: error: invalid alias "prod\/eu": use 1 to 63 letters/);
    expectUsage(await canopy(["promote", first], dir), "required option '--alias <name>' not specified");
  });

  it("models lists every build newest first with status, trees, size, metrics and aliases", async () => {
    const run = await canopy(["models"], dir);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^BUILD\s+STATUS\s+CREATED \(UTC\)\s+TREES\s+SIZE\s+METRICS\s+ALIASES$/);
    const row = (id: string) => lines.find((l) => l.startsWith(id))!.split(/\s{2,}/);
    expect(row(second)).toEqual([second, "COMPLETED", expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d$/), "6", expect.stringMatching(/ KB$/), expect.stringMatching(/^accuracy 0\.\d{4}$/), "production"]);
    expect(row(first).at(-1)).toBe("staging");
    expect(row(regression).slice(3)).toEqual(["5", expect.stringMatching(/ KB$/), expect.stringMatching(/^R² -?\d\.\d{4}$/), "-"]);
    expect(row(pending).slice(1, 2).concat(row(pending).slice(3))).toEqual(["PENDING", "-", "-", "-", "-"]);

    const json = JSON.parse((await canopy(["models", "--json"], dir)).stdout) as { buildId: string; bytes?: number; trees?: number; aliases: string[] }[];
    expect(json.map((m) => m.buildId)).toEqual([pending, regression, second, first]);
    const report = JSON.parse(await readFile(join(dir, ".canopy", "builds", second, "report.json"), "utf8")) as { model: { bytes: number } };
    expect(json[2]).toMatchObject({ trees: 6, bytes: report.model.bytes, aliases: ["production"] });
  });

  it("the AWS app instead of the local store: --root does not mix with AWS flags; missing resources are named", async () => {
    expectUsage(await canopy(["models", "--root", ".canopy", "--table", "t"], dir), "--root is the local store; it does not go with --table");
    const env = Object.fromEntries(Object.entries(noCredentials()).filter(([k]) => !k.startsWith("CANOPY_")));
    const run = await canopy(["promote", first, "--alias", "production", "--aws"], dir, env);
    expectUsage(run, /^canopy: error: AWS resources not configured: table \(--table, \$CANOPY_TABLE or the SST link CanopyBuilds\)/);
  });

  it("models on an empty store says so", async () => {
    const empty = await mkdtemp(join(tmpdir(), "canopy-serving-empty-"));
    const run = await canopy(["models"], empty);
    expect([run.code, run.stdout]).toEqual([0, "no builds in .canopy\n"]);
    await rm(empty, { recursive: true, force: true });
  });
});

describe("canopy serve", () => {
  it("serves the alias, picks up a promotion within --alias-ttl, and stops on Ctrl-C", async () => {
    await canopy(["promote", second, "--alias", "production"], dir);
    const server = await serveInBackground(["--model", "production", "--alias-ttl", "0.2"], dir);
    try {
      expect(server.stderr()).toContain(`serving alias production (${second}): classification, 6 trees, 4 features, label species`);
      // JSON says so: fetch sends a bare string as text/plain, which is never read as JSON (issue 9.13).
      const json = { "content-type": "application/json" };
      const ask = async () => (await (await fetch(server.url, { method: "POST", headers: json, body: '{"rows": [[5.1, 3.5, 1.4, 0.2]]}' })).json()) as { model: { buildId: string } };
      expect((await ask()).model.buildId).toBe(second);
      expect((await canopy(["promote", first, "--alias", "production"], dir)).code).toBe(0);
      let served = (await ask()).model.buildId;
      for (let i = 0; i < 100 && served !== first; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        served = (await ask()).model.buildId;
      }
      expect(served).toBe(first);
      // The local store's other builds are reachable too.
      const other = (await (await fetch(`${server.url}/?model=${regression}`)).json()) as { model: { task: string } };
      expect(other.model.task).toBe("regression");
    } finally {
      const run = await server.stop();
      expect(run.code).toBe(0);
      expect(run.stderr.trimEnd().split("\n").at(-1)).toBe("canopy: stopped");
    }
  });

  it("predict --remote against it prints exactly what a local predict prints, in chunks, labels and probabilities", async () => {
    const server = await serveInBackground(["--model", first], dir);
    try {
      for (const extra of [[], ["--proba"]]) {
        const local = await canopy(["predict", "--model", first, IRIS, ...extra], dir);
        const remote = await canopy(["predict", "--remote", server.url, IRIS, "--chunk-rows", "40", ...extra], dir);
        expect(remote.code, remote.stderr).toBe(0);
        expect(remote.stdout).toBe(local.stdout);
        expect(remote.stderr).toContain(`canopy: ${first} (12 trees) at ${server.url}: 150 rows in 4 requests`);
        expect(remote.stderr).toContain("canopy: 150/150 rows (4/4 requests)");
      }
      const regressionLocal = await canopy(["predict", "--model", regression, DIABETES], dir);
      const regressionRemote = await canopy(["predict", "--remote", server.url, "--model", regression, DIABETES], dir);
      expect(regressionRemote.stdout).toBe(regressionLocal.stdout);
    } finally {
      await server.stop();
    }
  });

  it("predict --remote checks the data locally first, with the local messages (exit 2)", async () => {
    const server = await serveInBackground(["--model", first], dir);
    try {
      await writeFile(join(dir, "partial.csv"), "sepal_length,sepal_width,petal_width\n5.1,3.5,0.2\n");
      expectUsage(await canopy(["predict", "--remote", server.url, "partial.csv"], dir), "the CSV lacks feature column the model needs: petal_length");
      expectUsage(await canopy(["predict", "--remote", server.url, "--proba", "--model", regression, DIABETES], dir), "--proba needs a classification model; this one is regression");
      expectUsage(await canopy(["predict", "--remote", `${server.url}/?alias=nope`, IRIS], dir), /^canopy: error: remote http:\/\/127\.0\.0\.1:\d+\/: 404 alias "nope" is not set/);
      expectUsage(await canopy(["predict", "--remote", server.url, "--model", "model.canopy", IRIS], dir), '--model with --remote must be a build id (b- and 16 hex digits) or a partitioned run\'s (p-); got "model.canopy"');
    } finally {
      await server.stop();
    }
    expectUsage(await canopy(["predict", "--remote", "production", IRIS], dir), /^canopy: error: --remote production: no predict URL for the alias; set CANOPY_PREDICT_URL/);
  });

  it("predict --remote to a partitioned model prints what a local predict prints: chunks across partitions, classes the islands lack, unknown values", async () => {
    const PENGUINS = fixturePath("penguins.csv").pathname;
    const trained = await canopy(["train", PENGUINS, "--label", "Species", "--partition-by", "Island", "--trees", "6", "--grove-size", "3", "--json"], dir);
    expect(trained.code, trained.stderr).toBe(0);
    const runId = (JSON.parse(trained.stdout) as { runId: string }).runId;
    // Torgersen's penguins are all Adelie: its model knows one class, the others two or three.
    const text = await readFile(PENGUINS, "utf8");
    const lines = text.trimEnd().split("\n");
    await writeFile(join(dir, "islands.csv"), [lines[0], ...lines.slice(1, 6), lines[1]!.replace("Torgersen", "Anvers"), ...lines.slice(200, 204)].join("\n") + "\n");
    const server = await serveInBackground(["--model", runId], dir);
    try {
      for (const extra of [[], ["--proba"]]) {
        const local = await canopy(["predict", "--model", runId, PENGUINS, ...extra], dir);
        expect(local.code, local.stderr).toBe(0);
        const remote = await canopy(["predict", "--remote", server.url, PENGUINS, "--chunk-rows", "50", ...extra], dir);
        expect(remote.code, remote.stderr).toBe(0);
        expect(remote.stdout).toBe(local.stdout);
        expect(remote.stderr).toContain(`canopy: ${runId} (3 partitions by Island) at ${server.url}: ${lines.length - 1} rows in ${Math.ceil((lines.length - 1) / 50)} requests`);
      }
      // An island no model serves: refused naming its row, as locally; with --skip-unknown an empty prediction and the same warning.
      const refusedLocal = await canopy(["predict", "--model", runId, "islands.csv"], dir);
      const refusedRemote = await canopy(["predict", "--remote", server.url, "islands.csv", "--chunk-rows", "4"], dir);
      expect(refusedLocal.code).toBe(2);
      // After the progress lines (the requests were answered), the local refusal: nothing printed.
      expect([refusedRemote.code, refusedRemote.stdout]).toEqual([2, ""]);
      expect(refusedRemote.stderr.trimEnd().split("\n").at(-1)).toBe(refusedLocal.stderr.trimEnd());
      expect(refusedRemote.stderr).toContain("row 7");
      for (const extra of [[], ["--proba"]]) {
        const local = await canopy(["predict", "--model", runId, "islands.csv", "--skip-unknown", ...extra], dir);
        const remote = await canopy(["predict", "--remote", server.url, "islands.csv", "--skip-unknown", "--chunk-rows", "4", ...extra], dir);
        expect(remote.code, remote.stderr).toBe(0);
        expect(remote.stdout).toBe(local.stdout);
        const out = remote.stdout.split("\n");
        expect(out[6]).toBe(extra.length > 0 ? ",".repeat(out[0]!.split(",").length - 1) : "");
        expect(remote.stderr.trimEnd().split("\n").at(-1)).toBe(local.stderr.trimEnd().split("\n").at(-1));
      }
      expectUsage(await canopy(["predict", "--remote", server.url, "--skip-unknown", "--model", first, IRIS], dir), `--skip-unknown is for a partitioned model; ${first} is one forest`);
    } finally {
      await server.stop();
    }
  });

  it("serves a model file; refuses models it cannot find (exit 2)", async () => {
    const out = join(dir, ".canopy", "builds", first, "model.canopy");
    const server = await serveInBackground(["--model", out], dir);
    try {
      expect(server.stderr()).toContain(`serving ${out}`);
      expect(((await (await fetch(server.url)).json()) as { model: { trees: number } }).model.trees).toBe(12);
    } finally {
      await server.stop();
    }
    expectUsage(await canopy(["serve", "--model", "canary"], dir), 'alias "canary" is not set in .canopy (canopy promote <build-id> --alias canary)');
    expectUsage(await canopy(["serve", "--model", "b-0000000000000001"], dir), "build b-0000000000000001 has no model in .canopy (not found, or not finished)");
    expectUsage(await canopy(["serve", "--model", "no/such/model.canopy"], dir), "model not found: no/such/model.canopy");
    expectUsage(await canopy(["serve", "--port", "70000"], dir), /port number 0-65535/);
  });
});
