import type { BuildNotification } from "@canopy/core";

/** The one terminal line for a notification, e.g. `canopy: build b-… COMPLETED accuracy=0.9733 model builds/b-…/model.canopy`. */
export function formatNotification(n: BuildNotification): string {
  if (n.type === "build.failed") return `canopy: build ${n.buildId} FAILED: ${n.reason ?? "unknown reason"}`;
  const metrics = Object.entries(n.metrics ?? {})
    .filter(([key, value]) => key !== "task" && key !== "n" && typeof value === "number")
    .map(([key, value]) => `${key}=${Number((value as number).toFixed(4))}`);
  const missing = n.failedGroves?.length ? ` (${n.failedGroves.length} grove(s) missing: ${n.failedGroves.map((f) => f.grove).join(", ")})` : "";
  return [`canopy: build ${n.buildId} COMPLETED`, ...metrics, ...(n.modelKey ? [`model ${n.modelKey}`] : [])].join(" ") + missing;
}
