import { describe, expect, it } from "vitest";
import { integerSetting, readSetting, SETTINGS_ENV, stallLimitMs } from "../src/settings.ts";

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
    expect(stallLimitMs({})).toBe(30 * 60_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "0.5" })).toBe(30_000);
    expect(stallLimitMs({ CANOPY_STALL_MINUTES: "10080" })).toBe(10_080 * 60_000);
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "0" })).toThrow('CANOPY_STALL_MINUTES must be a number of minutes > 0; got "0"');
    expect(() => stallLimitMs({ CANOPY_STALL_MINUTES: "10081" })).toThrow('CANOPY_STALL_MINUTES must be at most 10080 minutes; got "10081"');
  });
});
