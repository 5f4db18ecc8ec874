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
