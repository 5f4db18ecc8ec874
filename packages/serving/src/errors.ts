import type { ErrorPolicy } from "@canopy/core";

/**
 * A request the handler refuses: the status (4xx, or 5xx for a server-side problem) and one line saying why.
 * Its policy follows the status: a 4xx is the client's input, a 5xx our fault.
 */
export class ServingError extends Error {
  override name = "ServingError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }

  get policy(): ErrorPolicy {
    return this.status < 500 ? "input" : "internal";
  }
}
