import { describe, expect, it } from "vitest";
import { readSettings, SETTINGS_ENV } from "../../stacks/settings.ts";

describe("readSettings", () => {
  it("gives the documented defaults for an empty environment", () => {
    expect(readSettings({})).toEqual({
      trainer: { memoryMb: 1769, timeoutSeconds: 120, batchSize: 1, maxConcurrency: 100 },
      groves: { maxReceives: 3 },
      aggregator: { memoryMb: 3008, timeoutSeconds: 300, retries: 2 },
      sweeper: { schedule: "rate(5 minutes)", stallMinutes: 45 },
      ledger: { retentionDays: 90 },
    });
  });

  it("keeps the trainer's concurrency cap below the seed pipelines' 1,000 by default", () => {
    expect(readSettings({}).trainer.maxConcurrency).toBeLessThan(1000);
    expect(SETTINGS_ENV.CANOPY_TRAINER_MAX_CONCURRENCY.max).toBe(1000);
  });

  it("reads each variable, treating blank as unset", () => {
    const s = readSettings({
      CANOPY_TRAINER_MEMORY_MB: "2048",
      CANOPY_TRAINER_TIMEOUT_SECONDS: " ",
      CANOPY_MAX_RECEIVES: "7",
      CANOPY_AGGREGATOR_RETRIES: "0",
      CANOPY_SWEEP_SCHEDULE: "cron(0/10 * * * ? *)",
      // 7 receives × 720 s = 84 minutes: the stall limit must be longer.
      CANOPY_STALL_MINUTES: "90",
      CANOPY_LEDGER_RETENTION_DAYS: "30",
    });
    expect(s.sweeper.stallMinutes).toBe(90);
    expect(s.ledger.retentionDays).toBe(30);
    expect(s.trainer.memoryMb).toBe(2048);
    expect(s.trainer.timeoutSeconds).toBe(120);
    expect(s.groves.maxReceives).toBe(7);
    expect(s.aggregator.retries).toBe(0);
    expect(s.sweeper.schedule).toBe("cron(0/10 * * * ? *)");
  });

  it.each([
    ["CANOPY_TRAINER_TIMEOUT_SECONDS", "901", 'CANOPY_TRAINER_TIMEOUT_SECONDS must be an integer from 1 to 900; got "901"'],
    ["CANOPY_TRAINER_BATCH_SIZE", "11", 'CANOPY_TRAINER_BATCH_SIZE must be an integer from 1 to 10; got "11"'],
    ["CANOPY_TRAINER_MAX_CONCURRENCY", "1", 'CANOPY_TRAINER_MAX_CONCURRENCY must be an integer from 2 to 1000; got "1"'],
    ["CANOPY_MAX_RECEIVES", "2.5", 'CANOPY_MAX_RECEIVES must be an integer from 1 to 1000; got "2.5"'],
    ["CANOPY_AGGREGATOR_RETRIES", "-1", 'CANOPY_AGGREGATOR_RETRIES must be an integer from 0 to 10000; got "-1"'],
    ["CANOPY_TRAINER_MEMORY_MB", "lots", 'CANOPY_TRAINER_MEMORY_MB must be an integer from 128 to 10240; got "lots"'],
  ])("rejects %s=%s in one line", (name, value, message) => {
    expect(() => readSettings({ [name]: value })).toThrow(message);
  });

  it("turns on provisioned pollers for the trainer when either bound is set, Lambda's defaults filling the other", () => {
    expect(readSettings({}).trainer.provisionedPollers).toBeUndefined();
    expect(readSettings({ CANOPY_TRAINER_MIN_POLLERS: "10" }).trainer.provisionedPollers).toEqual({ minimum: 10, maximum: 200 });
    expect(readSettings({ CANOPY_TRAINER_MAX_POLLERS: "50" }).trainer.provisionedPollers).toEqual({ minimum: 2, maximum: 50 });
    expect(readSettings({ CANOPY_TRAINER_MIN_POLLERS: "5", CANOPY_TRAINER_MAX_POLLERS: "2000", CANOPY_TRAINER_MAX_CONCURRENCY: " " }).trainer.provisionedPollers).toEqual({
      minimum: 5,
      maximum: 2000,
    });
  });

  it.each([
    [{ CANOPY_TRAINER_MIN_POLLERS: "1" }, 'CANOPY_TRAINER_MIN_POLLERS must be an integer from 2 to 200; got "1"'],
    [{ CANOPY_TRAINER_MAX_POLLERS: "2001" }, 'CANOPY_TRAINER_MAX_POLLERS must be an integer from 2 to 2000; got "2001"'],
    [{ CANOPY_TRAINER_MIN_POLLERS: "20", CANOPY_TRAINER_MAX_POLLERS: "10" }, "CANOPY_TRAINER_MIN_POLLERS (20) must not exceed CANOPY_TRAINER_MAX_POLLERS (10)"],
    [{ CANOPY_TRAINER_MIN_POLLERS: "10", CANOPY_TRAINER_MAX_CONCURRENCY: "50" }, "CANOPY_TRAINER_MAX_CONCURRENCY cannot be set with CANOPY_TRAINER_MIN_POLLERS/_MAX_POLLERS"],
  ])("rejects pollers %j in one line", (env, message) => {
    expect(() => readSettings(env)).toThrow(message);
  });

  it("rejects timings that contradict each other in one line: a stall limit a failing grove's retries outlast", () => {
    expect(() => readSettings({ CANOPY_MAX_RECEIVES: "7" })).toThrow(
      "CANOPY_STALL_MINUTES (45) must be longer than a failing grove takes to reach the dead-letter queue: a visibility timeout of 720 s × CANOPY_MAX_RECEIVES 7 = 84 minutes; raise it, or lower CANOPY_TRAINER_TIMEOUT_SECONDS or CANOPY_MAX_RECEIVES",
    );
    expect(() => readSettings({ CANOPY_LEDGER_RETENTION_DAYS: "3" })).toThrow('CANOPY_LEDGER_RETENTION_DAYS must be an integer from 7 to 3650; got "3"');
  });

  it("rejects a schedule EventBridge would not accept", () => {
    expect(() => readSettings({ CANOPY_SWEEP_SCHEDULE: "every 5 minutes" })).toThrow(
      'CANOPY_SWEEP_SCHEDULE must be an EventBridge rate(...) or cron(...) expression; got "every 5 minutes"',
    );
  });
});
