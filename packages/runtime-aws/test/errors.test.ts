import { isRetryable, policyOf } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { checkFilterPattern } from "../src/emulator/filter.ts";
import { AwsBusyError, AwsInternalError, AwsSetupError } from "../src/errors.ts";
import { itemToSummary } from "../src/ledger-item.ts";
import { resolveResources } from "../src/resources.ts";
import { readSetting } from "../src/settings.ts";

const thrown = async (fn: () => unknown) => {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error("did not throw");
};

describe("the AWS adapters' faults carry their policy", () => {
  it("a set-up the user must fix is input: resources not named, a setting out of range, a filter the emulator cannot run", async () => {
    expect(AwsSetupError.policy).toBe("input");
    const errors = [
      await thrown(() => resolveResources(["table"], { env: {}, loadSst: async () => undefined })),
      await thrown(() => readSetting({ CANOPY_MAX_RECEIVES: "0" }, "CANOPY_MAX_RECEIVES")),
      await thrown(() => checkFilterPattern({ a: "x" })),
    ];
    for (const err of errors) {
      expect(err).toBeInstanceOf(AwsSetupError);
      expect(policyOf(err)).toBe("input");
      expect(isRetryable(err)).toBe(false);
    }
  });

  it("an item Canopy did not write is internal; a busy resource is transient; both are retried", async () => {
    const item = await thrown(() => itemToSummary({ buildId: { S: "b-1" } }));
    expect(item).toBeInstanceOf(AwsInternalError);
    expect(policyOf(item)).toBe("internal");
    expect(policyOf(new AwsBusyError("gave up after 5 conflicting writes"))).toBe("transient");
    for (const err of [item, new AwsBusyError("x")]) expect(isRetryable(err)).toBe(true);
  });
});
