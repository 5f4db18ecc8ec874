import { InterruptedExit } from "./errors.ts";

/**
 * An AbortSignal that fires on the first of these process signals (or when `external` aborts, which replaces
 * them: tests and embedders stop the command themselves). `dispose()` removes the handlers.
 */
export function stopOn(signals: readonly NodeJS.Signals[], external?: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  if (external) {
    external.addEventListener("abort", onSignal, { once: true });
    return { signal: stop.signal, dispose: () => external.removeEventListener("abort", onSignal) };
  }
  for (const s of signals) process.once(s, onSignal);
  return { signal: stop.signal, dispose: () => signals.forEach((s) => process.off(s, onSignal)) };
}

/**
 * Ctrl-C during an embedded run: the first closes the runtime (the trainers stop, the run waits for --resume) and
 * says so through `say`; a second quits at once. `interrupted` tells the caller whether an error came from that.
 */
export function interruptTrainers(runtime: { close(): Promise<void> }, say: (line: string) => void): { readonly interrupted: boolean; dispose(): void } {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(new InterruptedExit().exitCode);
    interrupted = true;
    say("interrupted: stopping the trainers (Ctrl-C again to quit at once)");
    void runtime.close();
  };
  process.on("SIGINT", onSigint);
  return {
    get interrupted() {
      return interrupted;
    },
    dispose: () => void process.off("SIGINT", onSigint),
  };
}
