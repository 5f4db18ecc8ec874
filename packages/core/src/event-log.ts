/**
 * Events kept in order, for any number of readers that may start late: each reader gets every event from the
 * first, then waits for more until the log is closed (or failed: the reader throws the error after the events
 * before it). A runtime appends as things happen, whether or not anyone follows yet, so nothing that happens
 * between a submission and the caller's `follow` is lost.
 */
export class EventLog<T> {
  private readonly events: T[] = [];
  private state: { closed: false } | { closed: true; error?: unknown } = { closed: false };
  private wake = new Set<() => void>();

  get closed(): boolean {
    return this.state.closed;
  }

  append(event: T): void {
    if (this.state.closed) return;
    this.events.push(event);
    this.notify();
  }

  /** No more events; readers finish after the ones they have not read. */
  close(): void {
    if (this.state.closed) return;
    this.state = { closed: true };
    this.notify();
  }

  /** Readers throw `error` after the events appended before it. */
  fail(error: unknown): void {
    if (this.state.closed) return;
    this.state = { closed: true, error };
    this.notify();
  }

  /** Every event from the first; returns when the log closes or the signal aborts. */
  async *read(signal?: AbortSignal): AsyncGenerator<T> {
    let next = 0;
    for (;;) {
      while (next < this.events.length) {
        if (signal?.aborted) return;
        yield this.events[next++];
      }
      if (signal?.aborted) return;
      if (this.state.closed) {
        if ("error" in this.state) throw this.state.error;
        return;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake.delete(done);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        this.wake.add(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  private notify(): void {
    for (const wake of [...this.wake]) wake();
  }
}
