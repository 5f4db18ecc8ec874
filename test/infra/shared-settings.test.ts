// The SST app validates CANOPY_STALL_MINUTES at deploy; the sweeper reads it again at run time. One reader:
// whatever the deploy accepts, the function reads as the same limit, and whatever it refuses, so does the function.
import { describe, expect, it } from "vitest";
import { stallLimitMs } from "../../packages/functions/src/sweeper.ts";
import { readSettings } from "../../stacks/settings.ts";

const outcome = (read: () => number) => {
  try {
    return { value: read() };
  } catch (err) {
    return { error: (err as Error).message };
  }
};

// The deploy also refuses a stall limit shorter than the other timings allow (settingsConflict); these make them as
// short as they go (a 6 s visibility timeout, one receive, a 1 s aggregator), so only the variable's own rule decides.
const SHORT = { CANOPY_TRAINER_TIMEOUT_SECONDS: "1", CANOPY_MAX_RECEIVES: "1", CANOPY_AGGREGATOR_TIMEOUT_SECONDS: "1" };

describe("CANOPY_STALL_MINUTES at deploy and in the sweeper", () => {
  it.each(["", "45", "1.5", "10080", "0", "-3", "soon", "10081"])("%j means the same to both", (value) => {
    const env = { ...SHORT, CANOPY_STALL_MINUTES: value };
    const deployed = outcome(() => readSettings(env).sweeper.stallMinutes * 60_000);
    expect(outcome(() => stallLimitMs(env))).toEqual(deployed);
  });
});
