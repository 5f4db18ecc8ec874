import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { KERNEL_BYTES_FILE, KERNEL_MODULES, kernelBytesSource } from "../../../scripts/kernel-bytes.ts";
import * as stored from "../src/kernel-bytes.ts";
import { fromBase64 } from "../src/wasm.ts";

describe("kernel-bytes.ts: the WebAssembly modules the forest runs", () => {
  it.each(Object.keys(KERNEL_MODULES))("%s is the module its assembler makes (else: npm run kernels)", (name) => {
    const assembled = KERNEL_MODULES[name]();
    const kept = fromBase64((stored as Record<string, string>)[name]);
    expect(kept.length).toBe(assembled.length);
    expect(Buffer.from(kept).equals(Buffer.from(assembled))).toBe(true);
  });

  it("the file is what npm run kernels writes", () => {
    expect(readFileSync(KERNEL_BYTES_FILE, "utf8")).toBe(kernelBytesSource());
  });
});
