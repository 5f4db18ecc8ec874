import { describe, expect, it } from "vitest";
import { aggregationLeaseMs, integerSetting, readSetting, settingsConflict, SETTINGS_ENV, stallLimitMs } from "../src/settings.ts";

describe("the settings reader", () => {
  it("gives each setting's default when it is unset or blank", () => {
    for (const name of Object.keys(SETTINGS_ENV) as (keyof typeof SETTINGS_ENV)[]) {
      expect(readSetting({}, name), name).toBe(SETTINGS_ENV[name].default);
      expect(readSetting({ [name]: "  " }, name), name).toBe(SETTINGS_ENV[name].default);
    }
  });

  it("reads integers within their range and refuses the rest in one line", () => {
    expect(readSetting({ CANOPY_MAX_RECEIVES: "7" }, "CANOPY_MAX_RECEIVES")).toBe(7);
    expect(() => readSetting({ CANOPY_MAX_RECEIVES: "0" }, "CANOPY_MAX_RECEIVES")).toThrow('CANOPY_MAX_RECEIVES must be an integer from 1 to 1000; got "0"');
    expect(() => integerSetting({ X: "1.5" }, "X", { default: 1, min: 1, max: 9 })).toThrow('X must be an integer from 1 to 9; got "1.5"');
  });

  it("reads the stall limit as minutes, fractions allowed, at most a week", () => {
    // 45 minutes: longer than a failing grove's retries take with the default trainer settings (36 minutes).
    expect(stallLimitMs({})).toBe(45 * 60_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "0.5" })).toBe(30_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "10080" })).toBe(10_080 * 60_000);
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "0" })).toThrow('CANOPY_STALL_MINUTES must be a number of minutes > 0; got "0"');
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "10081" })).toThrow('CANOPY_STALL_MINUTES must be at most 10080 minutes; got "10081"');
  });

  it("gives an aggregation claim the aggregator's time limit and a minute", () => {
    expect(aggregationLeaseMs({})).toBe(360_000);
    expect(aggregationLeaseMs({ CANOPY_AGGREGATOR_TIMEOUT_SECONDS: "900" })).toBe(960_000);
  });
});

describe("settingsConflict: timings that contradict each other", () => {
  const defaults = { stallMinutes: 45, visibilityTimeoutSeconds: 720, maxReceives: 3, aggregatorTimeoutSeconds: 300 };

  it("accepts the defaults", () => {
    expect(settingsConflict(defaults)).toBeUndefined();
  });

  it("refuses a stall limit a failing grove's retries outlast (the seed's 30 minutes against 36), in one line", () => {
    expect(settingsConflict({ ...defaults, stallMinutes: 30 })).toBe(
      "CANOPY_STALL_MINUTES (30) must be longer than a failing grove takes to reach the dead-letter queue: a visibility timeout of 720 s × CANOPY_MAX_RECEIVES 3 = 36 minutes; raise it, or lower CANOPY_TRAINER_TIMEOUT_SECONDS or CANOPY_MAX_RECEIVES",
    );
    expect(settingsConflict({ ...defaults, stallMinutes: 36 })).toMatch(/^CANOPY_STALL_MINUTES \(36\) must be longer/);
    expect(settingsConflict({ ...defaults, stallMinutes: 36.5 })).toBeUndefined();
  });

  it("refuses a stall limit an aggregation may outlast", () => {
    const conflict = settingsConflict({ ...defaults, visibilityTimeoutSeconds: 60, maxReceives: 1, aggregatorTimeoutSeconds: 900, stallMinutes: 10 });
    expect(conflict).toBe("CANOPY_STALL_MINUTES (10) must be longer than an aggregation may take: CANOPY_AGGREGATOR_TIMEOUT_SECONDS 900 + 60 s = 16 minutes");
  });
});
