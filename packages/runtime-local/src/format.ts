import { scoreOf, showParams, type BuildNotification, type CanopyNotification, type PartitionNotification, type StudyNotification } from "@canopy/core";

/** The one terminal line for a notification, e.g. `canopy: build b-… COMPLETED accuracy=0.9733 model builds/b-…/model.canopy`. */
export function formatNotification(n: CanopyNotification): string {
  if ("studyId" in n) return formatStudyNotification(n);
  if ("runId" in n) return formatPartitionNotification(n);
  if (n.type === "build.failed") return `canopy: build ${n.buildId} FAILED: ${n.reason ?? "unknown reason"}`;
  const metrics = Object.entries(n.metrics ?? {})
    .filter(([key, value]) => key !== "task" && key !== "n" && typeof value === "number")
    .map(([key, value]) => `${key}=${Number((value as number).toFixed(4))}`);
  const missing = n.failedGroves?.length ? ` (${n.failedGroves.length} grove(s) missing: ${n.failedGroves.map((f) => f.grove).join(", ")})` : "";
  return [`canopy: build ${n.buildId} COMPLETED`, ...metrics, ...(n.modelKey ? [`model ${n.modelKey}`] : [])].join(" ") + missing;
}

/** e.g. `canopy: study s-… COMPLETED best accuracy=0.9533 (max_depth=8 max_features=sqrt), 12 candidates x 3 folds`. */
function formatStudyNotification(n: StudyNotification): string {
  if (n.type === "study.failed") return `canopy: study ${n.studyId} FAILED: ${n.reason ?? "unknown reason"}`;
  const score = n.best_score_ !== undefined ? ` best ${n.scoring}=${Number(n.best_score_.toFixed(4))}` : "";
  const params = n.best_params_ ? ` (${showParams(n.best_params_)})` : "";
  const scored = n.oob ? "scored out of bag" : `x ${n.cv} folds`;
  // The final model's held-out score by the same scorer (its metric, sign as sklearn's).
  const test = n.final && n.scoring ? scoreOf(n.scoring, n.final.metrics) : Number.NaN;
  const final = n.final ? `; final model ${n.final.buildId}${Number.isFinite(test) ? ` test ${n.scoring}=${Number(test.toFixed(4))}` : ""} model ${n.final.modelKey}` : "";
  return `canopy: study ${n.studyId} COMPLETED${score}${params}, ${n.candidates} candidates ${scored}${final}${n.reportKey ? ` report ${n.reportKey}` : ""}`;
}

/** e.g. `canopy: partitioned run p-… COMPLETED 48 of 50 partitions by store (2 skipped) accuracy=0.91 model partitions/p-…/model.json`. */
function formatPartitionNotification(n: PartitionNotification): string {
  if (n.type === "partitions.failed") return `canopy: partitioned run ${n.runId} FAILED: ${n.reason ?? "unknown reason"}`;
  const c = n.counts;
  const counts = c ? ` ${c.completed} of ${c.partitions} partitions by ${n.partitionBy}${c.skipped + c.failed > 0 ? ` (${c.skipped} skipped, ${c.failed} failed)` : ""}` : "";
  const metrics = Object.entries(n.metrics ?? {})
    .filter(([key, value]) => key !== "n" && typeof value === "number")
    .map(([key, value]) => ` ${key}=${Number((value as number).toFixed(4))}`)
    .join("");
  return `canopy: partitioned run ${n.runId} COMPLETED${counts}${metrics}${n.modelKey ? ` model ${n.modelKey}` : ""}`;
}
