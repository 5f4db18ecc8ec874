import { createHash } from "node:crypto";

/** SHA-256 of a blob as hex: what a landing records for its grove and the aggregator checks. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
