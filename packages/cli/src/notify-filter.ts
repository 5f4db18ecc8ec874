import { InvalidArgumentError, type Command } from "commander";
import type { BuildNotification, CanopyNotification, PartitionNotification, StudyNotification } from "@canopy/core";
import { collectTag } from "./args.ts";
import { UsageError } from "./errors.ts";
import { duration, metricsLine } from "./format.ts";

/** The statuses a notification can carry (one per build, when it ends). */
export const NOTIFIED_STATUSES = ["COMPLETED", "FAILED"] as const;
export type NotifiedStatus = (typeof NOTIFIED_STATUSES)[number];

/** The kinds of notification (the `type` attribute): a build's end, a study's, or a partitioned run's. */
export const NOTIFIED_TYPES = ["build.completed", "build.failed", "study.completed", "study.failed", "partitions.completed", "partitions.failed"] as const;
export type NotifiedType = (typeof NOTIFIED_TYPES)[number];

export interface FilterOptions {
  build?: string;
  study?: string;
  status?: NotifiedStatus[];
  type?: NotifiedType[];
  tag?: Record<string, string>;
}

/** --type build.completed,study.failed (repeated values collapse). */
export function parseTypes(text: string): NotifiedType[] {
  const values = text.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = values.filter((v) => !(NOTIFIED_TYPES as readonly string[]).includes(v));
  if (values.length === 0 || bad.length > 0) throw new InvalidArgumentError(`Expected a comma-separated list of ${NOTIFIED_TYPES.join(", ")}.`);
  return [...new Set(values)] as NotifiedType[];
}

function parseStudyId(text: string): string {
  if (!/^s-[0-9a-f]{16}$/.test(text)) throw new InvalidArgumentError("Expected a study id (s- and 16 hex digits).");
  return text;
}

/** --status COMPLETED,FAILED (any case; repeated values collapse). */
export function parseStatuses(text: string): NotifiedStatus[] {
  const values = text.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = values.filter((v) => !(NOTIFIED_STATUSES as readonly string[]).includes(v));
  if (values.length === 0 || bad.length > 0) throw new InvalidArgumentError(`Expected a comma-separated list of ${NOTIFIED_STATUSES.join(", ")}.`);
  return [...new Set(values)] as NotifiedStatus[];
}

const BUILD_ID = /^b-[0-9a-f]{16}$/;

function parseBuildId(text: string): string {
  if (!BUILD_ID.test(text)) throw new InvalidArgumentError("Expected a build id (b- and 16 hex digits).");
  return text;
}

/** --build, --status and --tag: the notifications a subscription (or watch) receives. */
export function addFilterOptions(command: Command): Command {
  return command
    .option("--build <id>", "only this build's notification", parseBuildId)
    .option("--study <id>", "only this study's notification", parseStudyId)
    .option("--status <list>", "only these outcomes: COMPLETED, FAILED or COMPLETED,FAILED", parseStatuses)
    .option("--type <list>", `only these kinds: ${NOTIFIED_TYPES.join(", ")} (comma-separated)`, parseTypes)
    .option("--tag <key=value>", "only builds with this tag (repeatable; all must match)", collectTag);
}

/** SNS's limit on the keys of one filter policy (--build, --status and each --tag count one). */
export const MAX_FILTER_KEYS = 5;

export interface SnsFilter {
  policy: Record<string, unknown>;
  scope: "MessageAttributes" | "MessageBody";
}

/**
 * The subscription filter policy, or undefined for no filter. buildId and status are message attributes the
 * SnsNotifier sets, so without tags the policy filters on attributes. Tags travel as one JSON string attribute,
 * which a policy cannot look inside; with --tag the policy filters on the message body instead (the notification
 * JSON, whose `buildId`, `status` and `tags` have the same names), which SNS supports as FilterPolicyScope
 * MessageBody. Throws past SNS's five keys.
 */
export function filterPolicy(f: FilterOptions): SnsFilter | undefined {
  const tags = Object.entries(f.tag ?? {});
  const keys = (f.build ? 1 : 0) + (f.study ? 1 : 0) + (f.status?.length ? 1 : 0) + (f.type?.length ? 1 : 0) + tags.length;
  if (keys > MAX_FILTER_KEYS)
    throw new UsageError(`an SNS filter policy takes at most ${MAX_FILTER_KEYS} keys; --build, --study, --status, --type and ${tags.length} --tag make ${keys}`);
  if (keys === 0) return undefined;
  const policy: Record<string, unknown> = {};
  if (f.build) policy.buildId = [f.build];
  if (f.study) policy.studyId = [f.study];
  if (f.status?.length) policy.status = [...f.status];
  if (f.type?.length) policy.type = [...f.type];
  if (tags.length === 0) return { policy, scope: "MessageAttributes" };
  policy.tags = Object.fromEntries(tags.map(([k, v]) => [k, [v]]));
  return { policy, scope: "MessageBody" };
}

/** `arn:<partition>:sqs:<region>:<account>:<queue>`. */
export function parseSqsArn(text: string): { partition: string; region: string; account: string; name: string } | undefined {
  const m = /^arn:(aws[a-z-]*):sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)$/.exec(text);
  return m ? { partition: m[1], region: m[2], account: m[3], name: m[4] } : undefined;
}

/** The statement an SQS queue's policy needs before SNS may deliver to it from `topicArn`. */
export function snsSendStatement(queueArn: string, topicArn: string): Record<string, unknown> {
  return {
    Sid: `canopy-${topicArn.split(":").pop()}`.slice(0, 100),
    Effect: "Allow",
    Principal: { Service: "sns.amazonaws.com" },
    Action: "sqs:SendMessage",
    Resource: queueArn,
    Condition: { ArnEquals: { "aws:SourceArn": topicArn } },
  };
}

/**
 * The queue policy with the statement added, keeping every statement already there; undefined when the policy
 * already lets SNS send from that topic (nothing to write; AWS may have reformatted it, so compare loosely).
 */
export function withStatement(existing: string | undefined, statement: Record<string, unknown>): string | undefined {
  const policy = existing ? (JSON.parse(existing) as { Version?: string; Statement?: unknown }) : {};
  const statements: unknown[] = Array.isArray(policy.Statement) ? [...policy.Statement] : policy.Statement ? [policy.Statement] : [];
  const topicArn = (statement.Condition as { ArnEquals: Record<string, string> }).ArnEquals["aws:SourceArn"];
  const allows = (s: unknown) => {
    const text = JSON.stringify(s);
    return (s as { Effect?: string }).Effect === "Allow" && text.includes("sns.amazonaws.com") && text.includes("SendMessage") && text.includes(`"${topicArn}"`);
  };
  if (statements.some(allows)) return undefined;
  const taken = new Set(statements.map((s) => (s as { Sid?: string }).Sid));
  let sid = statement.Sid as string;
  for (let i = 2; taken.has(sid); i++) sid = `${statement.Sid as string}-${i}`;
  return JSON.stringify({ ...policy, Version: policy.Version ?? "2012-10-17", Statement: [...statements, { ...statement, Sid: sid }] });
}

/** One line per notification (`canopy watch`): id, outcome, metrics or reason, total time, cost, tags. */
export function notificationLine(n: CanopyNotification): string {
  if ("studyId" in n) return studyLine(n);
  if ("runId" in n) return partitionLine(n);
  const parts: string[] = [n.buildId, n.status];
  if (n.status === "COMPLETED") {
    parts.push(metricsLine(n.metrics ?? null));
    if (n.timings) parts.push(`total ${duration(n.timings.totalMs)}`);
    if (n.cost?.usd) parts.push(`$${n.cost.usd.total.toFixed(6)}`);
    if (n.failedGroves?.length) parts.push(`${n.failedGroves.length} grove(s) missing`);
  } else parts.push(n.reason ?? "no reason given");
  const tags = Object.entries(n.tags ?? {});
  if (tags.length > 0) parts.push(tags.map(([k, v]) => `${k}=${v}`).join(" "));
  return parts.join("  ");
}

/** A partitioned run's line: id, outcome, partitions trained of all, row-weighted metrics (or the reason), cost, tags. */
function partitionLine(n: PartitionNotification): string {
  const parts: string[] = [n.runId, n.status];
  if (n.status === "COMPLETED") {
    if (n.counts) parts.push(`${n.counts.completed} of ${n.counts.partitions} partitions by ${n.partitionBy} (${n.counts.skipped} skipped, ${n.counts.failed} failed)`);
    parts.push(metricsLine(n.metrics ?? null));
    if (n.cost?.usd) parts.push(`$${n.cost.usd.toFixed(6)}`);
  } else parts.push(n.reason ?? "no reason given");
  const tags = Object.entries(n.tags ?? {});
  if (tags.length > 0) parts.push(tags.map(([k, v]) => `${k}=${v}`).join(" "));
  return parts.join("  ");
}

/** A study's line: id, outcome, the best parameters and score (or the reason), candidates, cost, tags. */
function studyLine(n: StudyNotification): string {
  const parts: string[] = [n.studyId, n.status];
  if (n.status === "COMPLETED") {
    if (n.best_score_ !== undefined) parts.push(`best ${n.scoring} ${n.best_score_.toFixed(4)}`);
    if (n.best_params_) parts.push(Object.entries(n.best_params_).map(([k, v]) => `${k}=${v === null ? "none" : String(v)}`).join(" "));
    if (n.candidates !== undefined) parts.push(`${n.candidates} candidates x ${n.cv} folds`);
    if (n.cost?.usd) parts.push(`$${n.cost.usd.toFixed(6)}`);
  } else parts.push(n.reason ?? "no reason given");
  const tags = Object.entries(n.tags ?? {});
  if (tags.length > 0) parts.push(tags.map(([k, v]) => `${k}=${v}`).join(" "));
  return parts.join("  ");
}
