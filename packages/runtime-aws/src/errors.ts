import type { ErrorPolicy } from "@canopy/core";

// The classes extend Error and declare their policy statically (core's policyOf reads it): importing core for a
// base class would make the light modules (names, settings) load the whole pipeline.

abstract class AwsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * The AWS set-up is not what Canopy needs: resources not named, a table without its stream, a setting out of
 * range, an emulator mapping it cannot run, a message that is not an SNS delivery. Input: the user fixes it.
 */
export class AwsSetupError extends AwsError {
  static readonly policy: ErrorPolicy = "input";
}

/** A write that kept meeting concurrent writes, a resource not ready yet, a queue that kept refusing: try again. */
export class AwsBusyError extends AwsError {
  static readonly policy: ErrorPolicy = "transient";
}

/** An item Canopy did not write, a task the queue refuses as malformed, a condition and a rule that disagree: ours to fix. */
export class AwsInternalError extends AwsError {
  static readonly policy: ErrorPolicy = "internal";
}
