import type { FitParams, ForestOptions } from "@canopy/forest";
import { z } from "zod";
import { inShort, TaskError } from "./errors.ts";
import { isBuildId } from "./keys.ts";
import { forestOptionIssues, forestOptionsShape, issueLines, MAX_TREES } from "./spec.ts";

/**
 * One unit of training work, as queued. It points at the pack and never embeds data, so it stays far below
 * SQS's 256 KB limit. Trees [treeStart, treeEnd) are trained on the train split derived from (seed, testFraction).
 */
export interface GroveTask {
  v: 1;
  buildId: string;
  grove: number;
  treeStart: number;
  treeEnd: number;
  packKey: string;
  packHash: string;
  /** Split seed (the spec's seed); trees get their seeds from params.random_state via the engine's treeSeed. */
  seed: number;
  testFraction: number;
  params: FitParams;
  /** Epoch ms when the task was enqueued, for queue-wait timings. */
  queuedAt: number;
}

export const GROVE_TASK_VERSION = 1;

const count = (min: number) => z.number().int().min(min).max(MAX_TREES);

const paramsSchema = z.strictObject({
  n_estimators: count(1),
  random_state: z.number().int().min(0).max(0xffff_ffff),
  // Tasks queued before the learner became the only engine say so; the field is read and dropped.
  engine: z.literal("canopy", { error: 'must be "canopy": this Canopy trains with its own learner only' }).optional(),
  ...forestOptionsShape,
});

const taskSchema = z
  .strictObject({
    v: z.literal(1),
    buildId: z.string().refine(isBuildId, { error: "must be b- and 16 hex digits" }),
    grove: z.number().int().min(0).max(99_999),
    treeStart: count(0),
    treeEnd: count(1),
    packKey: z.string().min(1),
    packHash: z.string().regex(/^[0-9a-f]{64}$/, { error: "must be 64 hex digits" }),
    seed: z.number().int().min(0).max(0xffff_ffff),
    testFraction: z.number().min(0).lt(1),
    params: paramsSchema,
    queuedAt: z.number().nonnegative(),
  })
  .superRefine((t, ctx) => {
    if (t.treeEnd <= t.treeStart || t.treeEnd > t.params.n_estimators)
      ctx.addIssue({
        code: "custom",
        path: ["treeEnd"],
        input: t.treeEnd,
        message: `must be > treeStart (${t.treeStart}) and <= params.n_estimators (${t.params.n_estimators})`,
      });
  });

export function encodeGroveTask(task: GroveTask): string {
  return JSON.stringify(task);
}

/** Parses and validates a queued message. Throws TaskError (one line) on anything else, including other versions. */
export function decodeGroveTask(message: string): GroveTask {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch (err) {
    throw new TaskError(`grove task is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new TaskError("grove task must be a JSON object");
  const v = (value as { v?: unknown }).v;
  if (v !== GROVE_TASK_VERSION)
    throw new TaskError(`unsupported grove task version ${v === undefined ? "(none)" : inShort(v)}; this Canopy reads v${GROVE_TASK_VERSION}`);
  const result = taskSchema.safeParse(value, { reportInput: true });
  const issues = result.success
    ? forestOptionIssues(result.data.params as ForestOptions, "auto").map((i) => ({ path: `params.${i.path}`, message: i.message }))
    : issueLines(result.error.issues);
  if (!result.success || issues.length > 0) {
    const lines = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
    throw new TaskError(`invalid grove task: ${lines.join("; ")}`);
  }
  const { engine: _obsolete, ...params } = result.data.params;
  return { ...result.data, params } as GroveTask;
}

/** Which grove of which build a message asks for: all a trainer needs, since the build's manifest says the rest. */
export type GroveTaskRef = Pick<GroveTask, "buildId" | "grove"> & Partial<Omit<GroveTask, "buildId" | "grove">>;

/**
 * A queued message as a grove reference: the whole task when it is valid; otherwise, when it still names a build id
 * and a grove number, just those (and queuedAt), with what is wrong in `problems`; otherwise no task at all.
 */
export function groveTaskRef(message: string): { task?: GroveTaskRef; problems: string[] } {
  try {
    return { task: decodeGroveTask(message), problems: [] };
  } catch (err) {
    const problems = [(err as Error).message];
    let value: unknown;
    try {
      value = JSON.parse(message);
    } catch {
      return { problems };
    }
    const v = value as { buildId?: unknown; grove?: unknown; queuedAt?: unknown } | null;
    const grove = v?.grove;
    if (typeof v?.buildId !== "string" || !isBuildId(v.buildId) || typeof grove !== "number" || !Number.isInteger(grove) || grove < 0 || grove > 99_999)
      return { problems };
    const queuedAt = typeof v.queuedAt === "number" && v.queuedAt >= 0 ? { queuedAt: v.queuedAt } : {};
    return { task: { buildId: v.buildId, grove, ...queuedAt }, problems };
  }
}
