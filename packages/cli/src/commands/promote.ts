import type { Command } from "commander";
import { addTargetOptions, openTarget, type TargetOptions } from "../registry-target.ts";

export interface PromoteOptions extends TargetOptions {
  alias: string;
  json?: boolean;
  force?: boolean;
}

/** `canopy promote <build-id> --alias <name>`; the definition only, the work is imported when it runs. */
export function addPromoteCommand(canopy: Command): Command {
  return addTargetOptions(
    canopy
      .command("promote")
      .summary("point a model alias (e.g. production) at a completed build or partitioned run")
      .description(
        "Point an alias at a COMPLETED build's model. Predict endpoints serving that alias (canopy serve, the deployed " +
          "function) switch to it within their alias cache time, without a restart or redeploy. Builds are the model " +
          "versions; promoting an earlier build rolls back. A finished partitioned run (p- id) is promoted the same way: the " +
          "alias then serves its partitioned model (its input columns are its features and the partition column). A build whose model reads other features than the one the " +
          "alias serves is refused (its requests would fail) unless --force. Works on the local store (--root, default " +
          ".canopy), or with --aws, --endpoint or --table and --bucket on the deployed app's table and bucket.",
      )
      .argument("<build-id>", "a COMPLETED build or partitioned run (see canopy models)")
      .requiredOption("--alias <name>", "the alias, e.g. production or staging")
      .option("--json", "print the alias record as JSON")
      .option("--force", "promote even if the build's model reads other features than the alias's current one"),
    ["table", "bucket"],
  ).action(async (buildId: string, options: PromoteOptions) => {
    await promote(buildId, options);
  });
}

export async function promote(buildId: string, options: PromoteOptions, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const target = await openTarget(options, ["table", "bucket"]);
  try {
    if (!options.force) {
      const { checkPromotion, modelFeatures } = await import("@canopy/core");
      await checkPromotion(target.registry, (id) => modelFeatures(target.blobs, id), buildId, options.alias);
    }
    const record = await target.registry.promote(buildId, options.alias);
    if (options.json) out.write(`${JSON.stringify(record, null, 2)}\n`);
    else {
      const was = record.previous === undefined ? "" : record.previous === record.buildId ? " (unchanged)" : ` (was ${record.previous})`;
      out.write(`${record.alias} -> ${record.buildId}${was}\n`);
    }
  } catch (err) {
    // Say where the build was looked for (RegistryError, checked by name: core is not loaded at startup).
    if ((err as Error).name === "RegistryError" && (err as { code?: string }).code === "not-found") (err as Error).message += ` in ${target.where}`;
    throw target.explain(err);
  } finally {
    await target.close();
  }
}
