// A trainer thread that logs every delivery and fails the ones the test asks for (workerData.data).
import { appendFileSync } from "node:fs";
import { CanopyError } from "@canopy/forest";
import { serveTrainer } from "../../src/trainer.ts";

/**
 * Per grove: fail the first n deliveries, every delivery, at once with an input error (not retryable), or end
 * the trainer thread itself on the first delivery (an internal fault, retried on a new thread).
 */
export type Fault = number | "always" | "bad-input" | "exit";
export interface FaultData {
  log: string;
  faults: Record<number, Fault>;
}

serveTrainer({
  beforeTask(task, receiveCount, data) {
    const { log, faults } = data as FaultData;
    const fault = faults[task.grove];
    const fails = fault === "always" || fault === "bad-input" || (fault === "exit" && receiveCount === 1) || (typeof fault === "number" && receiveCount <= fault);
    appendFileSync(log, `${task.grove}:${receiveCount}:${fails ? "fail" : "ok"}\n`);
    if (!fails) return;
    if (fault === "bad-input") throw new CanopyError(`grove ${task.grove} has bad input`);
    if (fault === "exit") process.exit(1); // in a worker thread: ends the thread, not the process
    throw new Error(`injected fault in grove ${task.grove}`);
  },
});
