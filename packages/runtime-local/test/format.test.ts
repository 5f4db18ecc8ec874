import { describe, expect, it } from "vitest";
import type { StudyNotification } from "@canopy/core";
import { formatNotification } from "../src/format.ts";

describe("the one line of a study notification", () => {
  const done: StudyNotification = {
    v: 1,
    type: "study.completed",
    studyId: "s-0123456789abcdef",
    status: "COMPLETED",
    tags: {},
    scoring: "neg_log_loss",
    cv: 3,
    candidates: 4,
    best_params_: { max_depth: null },
    best_score_: -0.123456,
    reportKey: "studies/s-0123456789abcdef/report.json",
  };

  it("names the best, how candidates were scored, and the final model's test score by the study's scorer", () => {
    expect(formatNotification(done)).toBe(
      "canopy: study s-0123456789abcdef COMPLETED best neg_log_loss=-0.1235 (max_depth=none), 4 candidates x 3 folds report studies/s-0123456789abcdef/report.json",
    );
    const final = { buildId: "b-0123456789abcdef", modelKey: "builds/b-0123456789abcdef/model.canopy", metrics: { accuracy: 0.9, log_loss: 0.25 }, testRows: 38 };
    expect(formatNotification({ ...done, cv: 1, oob: true, final })).toBe(
      "canopy: study s-0123456789abcdef COMPLETED best neg_log_loss=-0.1235 (max_depth=none), 4 candidates scored out of bag; final model b-0123456789abcdef test neg_log_loss=-0.25 model builds/b-0123456789abcdef/model.canopy report studies/s-0123456789abcdef/report.json",
    );
  });
});
