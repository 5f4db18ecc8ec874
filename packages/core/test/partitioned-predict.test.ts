import { readFileSync } from "node:fs";
import { readCsvRecords, type CellValue } from "@canopy/forest";
import { beforeAll, describe, expect, it } from "vitest";
import {
  checkPartitionModel,
  encodeRows,
  InputError,
  InternalError,
  PartitionedPredictor,
  partitionedInputColumns,
  policyOf,
  recordRows,
  tableRows,
  UnknownPartitionError,
  type NamedRows,
  type PartitionLoader,
} from "../src/index.ts";
import { partitionedFixture, type PartitionedFixture } from "../src/testing/index.ts";

const csv = readFileSync(new URL("../../../test/fixtures/penguins.csv", import.meta.url), "utf8");

/** The penguins table as read: header and rows of text cells. */
function penguins(): { header: string[]; rows: string[][] } {
  let header: string[] = [];
  const rows: string[][] = [];
  readCsvRecords(csv, (record, row) => (row === 1 ? (header = record) : rows.push(record)));
  return { header, rows };
}

let byIsland: PartitionedFixture;
let withFallback: PartitionedFixture;
beforeAll(() => {
  byIsland = partitionedFixture(csv, { label: "Species", partitionBy: "Island", trees: 5 });
  withFallback = partitionedFixture(csv, { label: "Species", partitionBy: "Island", trees: 5, fallback: true, runId: "p-00000000000000fb" });
});

/** A loader over a fixture's forests that counts what it was asked for. */
function loader(fixture: PartitionedFixture): PartitionLoader & { asked: (string | undefined)[] } {
  const asked: (string | undefined)[] = [];
  const load = async (_ref: unknown, key: string | undefined) => {
    asked.push(key);
    return fixture.forests.get(key ?? "")!;
  };
  return Object.assign(load, { asked });
}

/** Rows `picks` of the table, with the island column replaced where `islands` says. */
function pick(picks: number[], islands: Record<number, string> = {}): NamedRows {
  const { header, rows } = penguins();
  const at = header.indexOf("Island");
  return tableRows(
    header,
    picks.map((r, i) => rows[r]!.map((cell, c): CellValue => (c === at && i in islands ? islands[i]! : cell))),
  );
}

describe("PartitionedPredictor", () => {
  it("routes each row to its partition's forest, predicts each partition in one batch, and answers in row order", async () => {
    const { header, rows } = penguins();
    const island = header.indexOf("Island");
    // Rows of all three islands, interleaved.
    const picks = [0, 200, 160, 1, 300, 60, 250, 2, 170, 25];
    const input = pick(picks);
    const load = loader(byIsland);
    const result = await new PartitionedPredictor(byIsland.model, load).predict(input);
    expect(new Set(load.asked)).toEqual(new Set(["Torgersen", "Dream", "Biscoe"].filter((k) => picks.some((r) => rows[r]![island] === k))));
    expect(load.asked.length).toBe(new Set(load.asked).size); // one load per partition, not per row
    picks.forEach((r, i) => {
      const forest = byIsland.forests.get(rows[r]![island]!)!;
      const alone = forest.predict(encodeRows(forest, input, [i], "Island"));
      expect(result.predictions[i], `row ${r}`).toBe(alone[0]);
    });
    // Only Dream's model knows Chinstrap, only Biscoe's Gentoo: the routing is visible in the answers.
    const chinstrap = picks.findIndex((r) => rows[r]![0] === "Chinstrap");
    expect(rows[picks[chinstrap]!]![island]).toBe("Dream");
    expect(result.predictions[chinstrap]).toBe("Chinstrap");
    expect(result.predictions[picks.indexOf(250)]).toBe("Gentoo");
    expect(byIsland.forests.get("Torgersen")!.classes).toEqual(["Adelie"]);
    expect(result.unknown).toEqual([]);
    expect(result.served.map((s) => s.value).sort()).toEqual(["Biscoe", "Dream", "Torgersen"]);
    expect(result.served.reduce((n, s) => n + s.rows, 0)).toBe(picks.length);
  });

  it("refuses unknown values before loading anything, naming the first values, their rows and the count", async () => {
    const load = loader(byIsland);
    const input = pick([0, 1, 2, 3, 4, 5], { 1: "Anvers", 3: "", 4: "Anvers", 5: "Cuverville" });
    const err = await new PartitionedPredictor(byIsland.model, load).predict(input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownPartitionError);
    expect(policyOf(err)).toBe("input");
    expect((err as Error).message).toBe(
      'no model for "Island" "Anvers" (row 3), an empty value (row 5), "Cuverville" (row 7): 4 rows in all, and the partitioned model has no fallback',
    );
    expect((err as UnknownPartitionError).unknown).toEqual([
      { row: 1, value: "Anvers" },
      { row: 3, value: undefined },
      { row: 4, value: "Anvers" },
      { row: 5, value: "Cuverville" },
    ]);
    expect(load.asked).toEqual([]);
  });

  it("with skipUnknown leaves those rows out (null) and predicts the rest", async () => {
    const input = pick([0, 200, 300], { 1: "Anvers" });
    const result = await new PartitionedPredictor(byIsland.model, loader(byIsland)).predict(input, { skipUnknown: true });
    expect(result.predictions[1]).toBeNull();
    expect(result.predictions[0]).toBe("Adelie");
    expect(typeof result.predictions[2]).toBe("string");
    expect(result.unknown).toEqual([{ row: 1, value: "Anvers" }]);
  });

  it("sends unknown and empty values to the fallback when there is one", async () => {
    const load = loader(withFallback);
    const input = pick([0, 200, 300], { 1: "Anvers", 2: " " });
    const result = await new PartitionedPredictor(withFallback.model, load).predict(input);
    expect(load.asked).toEqual(["Torgersen", undefined]);
    const fallback = withFallback.forests.get("")!;
    expect(result.predictions.slice(1)).toEqual(fallback.predict(encodeRows(fallback, input, [1, 2], "Island")));
    expect(result.served).toEqual([
      { value: "Torgersen", build: withFallback.model.partitions.Torgersen!.build, rows: 1 },
      { value: null, build: withFallback.model.fallback!.build, rows: 2 },
    ]);
  });

  it("gives probabilities over every class the served partitions know, 0 for a class a partition never saw", async () => {
    const input = pick([0, 200, 250]); // Torgersen, Dream (Chinstrap), Biscoe (Gentoo)
    const result = await new PartitionedPredictor(byIsland.model, loader(byIsland)).predict(input, { proba: true });
    expect(result.classes).toEqual(["Adelie", "Chinstrap", "Gentoo"]);
    expect(result.probabilities![0]).toEqual([1, 0, 0]); // Torgersen's model knows Adelie only
    for (const p of result.probabilities!) expect(p!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    result.probabilities!.forEach((p, i) => expect(result.predictions[i]).toBe(result.classes![p!.indexOf(Math.max(...p!))]));
  });

  it("reads records by name, each partition through its own schema; a record without a field or the partition column is refused", async () => {
    const predictor = new PartitionedPredictor(byIsland.model, loader(byIsland));
    const record = { Island: "Dream", "Beak Length (mm)": 50.9, "Beak Depth (mm)": 19.1, "Flipper Length (mm)": 196, "Body Mass (g)": 3550, Sex: "MALE" };
    const result = await predictor.predict(recordRows([record, { ...record, Island: "Biscoe", Sex: null }]));
    expect(result.predictions).toHaveLength(2);
    const { Sex: _, ...lacking } = record;
    await expect(predictor.predict(recordRows([record, lacking]))).rejects.toThrow('records[1] lacks column "Sex" (use null for a missing value)');
    const { Island: __, ...unrouted } = record;
    await expect(predictor.predict(recordRows([unrouted]))).rejects.toThrow(new InputError('the input has no column "Island", which the partitioned model routes rows by'));
    await expect(predictor.predict(recordRows([{ ...record, "Body Mass (g)": "heavy" }]))).rejects.toThrow('records[0].Body Mass (g): "heavy" is not a number');
    expect(() => recordRows([[1, 2]])).toThrow("records[0] is not an object of column names to values");
  });

  it("its input columns are the features and the partition column", () => {
    expect(partitionedInputColumns(byIsland.model)).toEqual(["Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)", "Sex", "Island"]);
  });
});

describe("checkPartitionModel", () => {
  it("passes the manifest's file and refuses one changed by a byte or cut short", () => {
    const ref = byIsland.model.partitions.Dream!;
    const bytes = byIsland.files.get(ref.build)!;
    expect(checkPartitionModel(bytes, ref, "m")).toBe(bytes);
    const changed = bytes.slice();
    changed[changed.length - 1] ^= 1;
    for (const bad of [changed, bytes.subarray(1)]) {
      const err = (() => {
        try {
          checkPartitionModel(bad, ref, "partitions/00001.canopy");
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(InternalError);
      expect((err as Error).message).toMatch(/^partitions\/00001\.canopy is not the model the partitioned model names/);
    }
  });
});
