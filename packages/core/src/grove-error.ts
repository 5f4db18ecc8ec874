import { errorLine } from "./errors.ts";
import { CONTENT_TYPES, keys } from "./keys.ts";
import type { BlobStore } from "./ports.ts";
import type { GroveTask } from "./task.ts";

/**
 * A queue's dead-letter copy of a task carries no error, so a trainer that fails a grove writes the error
 * line next to the grove; the dead-letter consumer reads the last one to say why the grove was given up on.
 */
export async function recordGroveError(task: Pick<GroveTask, "buildId" | "grove">, error: unknown, blobs: BlobStore): Promise<void> {
  await blobs.put(keys.groveError(task.buildId, task.grove), new TextEncoder().encode(errorLine(error)), CONTENT_TYPES.text);
}

export async function lastGroveError(task: Pick<GroveTask, "buildId" | "grove">, blobs: BlobStore): Promise<string | undefined> {
  const bytes = await blobs.get(keys.groveError(task.buildId, task.grove));
  return bytes && new TextDecoder().decode(bytes);
}
