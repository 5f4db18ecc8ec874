import { inShort, TaskError } from "./errors.ts";
import { isPartitionRunId } from "./partitioned-model.ts";

/**
 * The blob key layout, shared by S3 and the disk store so a build can move between them.
 * Ids are checked because the disk store maps keys to paths: nothing user-supplied may climb out.
 */
const BUILD_ID = /^b-[0-9a-f]{16}$/;
const PACK_HASH = /^[0-9a-f]{64}$/;

const STUDY_ID = /^s-[0-9a-f]{16}$/;

export function isBuildId(id: string): boolean {
  return BUILD_ID.test(id);
}

/** A study's id: `s-` and 16 hex digits. Its ledger record sits beside the builds' (a fan-in whose members are builds). */
export function isStudyId(id: string): boolean {
  return STUDY_ID.test(id);
}

/** What may name a ledger record: a build, a study or a partitioned run. */
export function isLedgerId(id: string): boolean {
  return BUILD_ID.test(id) || STUDY_ID.test(id) || isPartitionRunId(id);
}

function studyId(id: string): string {
  if (!STUDY_ID.test(id)) throw new TaskError(`invalid study id ${inShort(id)} (expected s- and 16 hex digits)`);
  return id;
}

function partitionRunId(id: string): string {
  if (!isPartitionRunId(id)) throw new TaskError(`invalid partitioned run id ${inShort(id)} (expected p- and 16 hex digits)`);
  return id;
}

function buildId(id: string): string {
  if (!BUILD_ID.test(id)) throw new TaskError(`invalid build id ${inShort(id)} (expected b- and 16 hex digits)`);
  return id;
}

export const keys = {
  pack(hash: string): string {
    if (!PACK_HASH.test(hash)) throw new TaskError(`invalid pack hash ${inShort(hash, 70)} (expected 64 hex digits)`);
    return `packs/${hash}.pack`;
  },
  spec(id: string): string {
    return `builds/${buildId(id)}/spec.json`;
  },
  grove(id: string, grove: number): string {
    if (!Number.isInteger(grove) || grove < 0 || grove > 99_999) throw new TaskError(`invalid grove number ${grove}`);
    return `builds/${buildId(id)}/groves/${String(grove).padStart(5, "0")}.grove`;
  },
  /** The last error a trainer hit on this grove: the dead-letter consumer reads it to say why the grove failed. */
  groveError(id: string, grove: number): string {
    return `${keys.grove(id, grove).slice(0, -".grove".length)}.error.txt`;
  },
  /** A grove's out-of-bag sums (builds with oob_score): @canopy/forest's OobSums binary. */
  groveOob(id: string, grove: number): string {
    return `${keys.grove(id, grove).slice(0, -".grove".length)}.oob`;
  },
  /** The merged out-of-bag decision function per training row (see oob.ts, encodeOobDecision). */
  oob(id: string): string {
    return `builds/${buildId(id)}/oob.bin`;
  },
  /** A build's link to its refit (refit.ts): written when the refit is started. */
  refitLink(id: string): string {
    return `builds/${buildId(id)}/refit.json`;
  },
  model(id: string): string {
    return `builds/${buildId(id)}/model.canopy`;
  },
  report(id: string): string {
    return `builds/${buildId(id)}/report.json`;
  },
  /** The report as one self-contained web page (charts included), beside report.json. */
  reportHtml(id: string): string {
    return `builds/${buildId(id)}/report.html`;
  },
  /** A study's manifest: its spec, pack, candidates and member builds. */
  study(id: string): string {
    return `studies/${studyId(id)}/study.json`;
  },
  studyReport(id: string): string {
    return `studies/${studyId(id)}/report.json`;
  },
  studyReportHtml(id: string): string {
    return `studies/${studyId(id)}/report.html`;
  },
  /**
   * Round `round`'s ranking in a halving study. With a final build (refit), the last round's (round 0's without
   * halving) is the study's report while the final build trains: report.json is that report with the final model.
   */
  studyRound(id: string, round: number): string {
    if (!Number.isInteger(round) || round < 0 || round > 99) throw new TaskError(`invalid study round ${round}`);
    return `studies/${studyId(id)}/rounds/${String(round).padStart(2, "0")}.json`;
  },
  /** A partitioned run's model: the manifest over its partitions' builds (partitioned-model.ts). */
  partitionedModel(id: string): string {
    return `partitions/${partitionRunId(id)}/model.json`;
  },
  /** A partitioned run's manifest: its spec, partitions and member builds (partitioned-run.ts). */
  partitionRun(id: string): string {
    return `partitions/${partitionRunId(id)}/run.json`;
  },
  partitionReport(id: string): string {
    return `partitions/${partitionRunId(id)}/report.json`;
  },
  /** A tuned partitioned run's per-partition rankings (partition-tuning.ts), as its tuning stage ranked them. */
  partitionTuning(id: string): string {
    return `partitions/${partitionRunId(id)}/tuning.json`;
  },
  partitionReportHtml(id: string): string {
    return `partitions/${partitionRunId(id)}/report.html`;
  },
};

/** A record's report and its page, by the kind of its id: a build's, a study's or a partitioned run's. */
export function reportKeysOf(id: string): { json: string; html: string } {
  if (STUDY_ID.test(id)) return { json: keys.studyReport(id), html: keys.studyReportHtml(id) };
  if (isPartitionRunId(id)) return { json: keys.partitionReport(id), html: keys.partitionReportHtml(id) };
  return { json: keys.report(id), html: keys.reportHtml(id) };
}

/**
 * Each kind of key as an IAM resource pattern (`*` matches any run of characters, `/` included, as in a policy's
 * Resource), so a function is granted S3 access by the same layout its keys are made from. keys.test.ts checks
 * that every key matches its own pattern and no other.
 */
export const KEY_PATTERNS = {
  pack: "packs/*.pack",
  spec: "builds/*/spec.json",
  grove: "builds/*/groves/*.grove",
  groveError: "builds/*/groves/*.error.txt",
  groveOob: "builds/*/groves/*.oob",
  oob: "builds/*/oob.bin",
  refitLink: "builds/*/refit.json",
  model: "builds/*/model.canopy",
  report: "builds/*/report.json",
  reportHtml: "builds/*/report.html",
  study: "studies/*/study.json",
  studyReport: "studies/*/report.json",
  studyReportHtml: "studies/*/report.html",
  studyRound: "studies/*/rounds/*.json",
  partitionedModel: "partitions/*/model.json",
  partitionRun: "partitions/*/run.json",
  partitionReport: "partitions/*/report.json",
  partitionTuning: "partitions/*/tuning.json",
  partitionReportHtml: "partitions/*/report.html",
} as const satisfies Record<keyof typeof keys, string>;

export type KeyKind = keyof typeof KEY_PATTERNS;

export const CONTENT_TYPES = {
  pack: "application/vnd.canopy.pack",
  grove: "application/vnd.canopy.forest",
  oob: "application/octet-stream",
  model: "application/vnd.canopy.forest",
  json: "application/json",
  html: "text/html; charset=utf-8",
  text: "text/plain; charset=utf-8",
} as const;
