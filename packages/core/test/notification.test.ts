import { describe, expect, it } from "vitest";
import { newBuildRecord } from "../src/ledger.ts";
import { failedNotification, MAX_NOTIFIED_FAILURES } from "../src/notification.ts";

describe("notifications stay small whatever the build tolerates", () => {
  it(`list at most ${MAX_NOTIFIED_FAILURES} failed groves, lowest first, and count the rest`, () => {
    const base = newBuildRecord({ buildId: "b-0123456789abcdef", total: 4000, tolerated: 2000, now: 0 });
    const failed = Array.from({ length: 2001 }, (_, g) => ({ grove: g, error: `grove ${g}: ${"x".repeat(480)}` }));
    const note = failedNotification({ ...base, status: "FAILED", failed }, "2001 of 4000 groves failed");
    expect(note.failedGroves).toHaveLength(MAX_NOTIFIED_FAILURES);
    expect(note.failedGroves![0].grove).toBe(0);
    expect(note.failedGrovesOmitted).toBe(2001 - MAX_NOTIFIED_FAILURES);
    // Far below SNS's 256 KB.
    expect(Buffer.byteLength(JSON.stringify(note))).toBeLessThan(40_000);
    const few = failedNotification({ ...base, status: "FAILED", failed: failed.slice(0, 3) }, "x");
    expect(few.failedGroves).toHaveLength(3);
    expect(few).not.toHaveProperty("failedGrovesOmitted");
  });
});
