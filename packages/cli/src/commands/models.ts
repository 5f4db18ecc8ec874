import type { Command } from "commander";
import type { ModelListing } from "@canopy/core";
import { bytes, columns } from "../format.ts";
import { addTargetOptions, openTarget, type TargetOptions } from "../registry-target.ts";

export interface ModelsOptions extends TargetOptions {
  json?: boolean;
}

/** `canopy models`; the definition only, the work is imported when it runs. */
export function addModelsCommand(canopy: Command): Command {
  return addTargetOptions(
    canopy
      .command("models")
      .summary("list builds (model versions) with status, metrics, size and aliases")
      .description(
        "List every build, newest first: status, when it was created, trees and model size, held-out metrics, and the " +
          "aliases pointing at it. The local store (--root, default .canopy), or with --aws, --endpoint or --table/--bucket the deployed app.",
      )
      .option("--json", "print the list as JSON"),
    ["table", "bucket"],
  ).action(async (options: ModelsOptions) => {
    await models(options);
  });
}

function metricsCell(m: ModelListing["metrics"]): string {
  if (!m) return "-";
  const num = (key: string) => (typeof m[key] === "number" ? (m[key] as number).toFixed(4) : "?");
  return m.task === "regression" ? `R² ${num("r2")}` : `accuracy ${num("accuracy")}`;
}

function created(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

/** Columns padded to their widest cell. */
export function modelsTable(rows: ModelListing[]): string {
  const cells = [
    ["BUILD", "STATUS", "CREATED (UTC)", "TREES", "SIZE", "METRICS", "ALIASES"],
    ...rows.map((r) => [
      r.buildId,
      r.status,
      created(r.createdAt),
      r.partitions !== undefined ? `${r.partitions} partitions` : r.trees === undefined ? "-" : String(r.trees),
      r.bytes === undefined ? "-" : bytes(r.bytes),
      metricsCell(r.metrics),
      r.aliases.join(", ") || "-",
    ]),
  ];
  return columns(cells);
}

export async function models(options: ModelsOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const { listModels } = await import("@canopy/core");
  const target = await openTarget(options, ["table", "bucket"]);
  try {
    const [builds, aliases] = await Promise.all([target.builds(), target.registry.list()]);
    const sizes = new Map(
      await Promise.all(builds.filter((b) => b.status === "COMPLETED").map(async (b) => [b.buildId, await target.modelOf(b.buildId)] as const)),
    );
    const rows = listModels(builds, aliases, (id) => sizes.get(id));
    if (options.json) out.write(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length === 0) out.write(`no builds in ${target.where}\n`);
    else out.write(`${modelsTable(rows)}\n`);
  } catch (err) {
    throw target.explain(err);
  } finally {
    await target.close();
  }
}
