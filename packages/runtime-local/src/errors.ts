import { InternalError, TransientError, type ErrorPolicy } from "@canopy/core";

/**
 * A build still running when its runtime was closed; `resume(buildId)` picks it up. Transient: nothing is
 * wrong with the build, and resuming finishes it.
 */
export class InterruptedError extends TransientError {
  constructor(readonly buildId: string) {
    super(
      buildId.startsWith("s-")
        ? `study ${buildId} was interrupted; resume it to finish the builds that have not finished`
        : `build ${buildId} was interrupted; resume it to finish the groves that have not landed`,
    );
  }
}

/** The local store lacks, or holds garbled, something Canopy wrote there: a pack, a report, a ledger or alias file. */
export class LocalStoreError extends InternalError {}

/** What crosses the thread boundary for an error: its policy is decided where it was thrown. */
export interface SerializedError {
  name: string;
  message: string;
  policy: ErrorPolicy;
  code?: string;
}

/**
 * A delivery that failed in a trainer thread (or the thread itself died). It carries the policy decided in the
 * trainer, on the instance: the class alone cannot say whether the grove's data or the machine was at fault.
 */
export class TrainerTaskError extends Error {
  readonly policy: ErrorPolicy;
  constructor(error: SerializedError) {
    super(error.message);
    this.name = error.name;
    this.policy = error.policy;
  }
}
