// A trainer thread that logs every delivery and fails the ones the test asks for (workerData.data).
import { appendFileSync } from "node:fs";
import { CanopyError } from "@canopy/forest";
import { serveTrainer } from "../../src/trainer.ts";

/**
 * Per grove: fail the first n deliveries, every delivery, at once with an input error (not retryable), end the
 * trainer thread itself on the first delivery (an internal fault, retried on a new thread), or "hold": wait, without
 * failing, until another grove's delivery reaches this thread (it does only if the pool hands a trainer a second job
 * while the first is in flight; otherwise the build never ends).
 */
export type Fault = number | "always" | "bad-input" | "exit" | "hold";
export interface FaultData {
  log: string;
  faults: Record<number, Fault>;
}

let released: () => void = () => undefined;
const another = new Promise<void>((resolve) => (released = resolve));

serveTrainer({
  async beforeTask(task, receiveCount, data) {
    const { log, faults } = data as FaultData;
    const fault = faults[task.grove];
    if (fault === "hold") {
      appendFileSync(log, `${task.grove}:${receiveCount}:hold\n`);
      await another;
      return;
    }
    released();
    const fails = fault === "always" || fault === "bad-input" || (fault === "exit" && receiveCount === 1) || (typeof fault === "number" && receiveCount <= fault);
    appendFileSync(log, `${task.grove}:${receiveCount}:${fails ? "fail" : "ok"}\n`);
    if (!fails) return;
    if (fault === "bad-input") throw new CanopyError(`grove ${task.grove} has bad input`);
    if (fault === "exit") process.exit(1); // in a worker thread: ends the thread, not the process
    throw new Error(`injected fault in grove ${task.grove}`);
  },
});
