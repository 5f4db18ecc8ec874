import { keys } from "@canopy/core";
import { dev } from "../../packages/cli/src/commands/dev.ts";
import { S3BlobStore } from "@canopy/runtime-aws";
import { describe, expect, it } from "vitest";
import { useAwsEmulator } from "./harness.ts";
import { capture, referenceModel } from "./e2e-support.ts";

const aws = useAwsEmulator();

describe("canopy dev", () => {
  it("provisions, submits, runs the handlers through the emulator and prints canopy train's progress and summary", { timeout: 120_000 }, async () => {
    const stdout = capture();
    const stderr = capture();
    const data = "test/fixtures/digits.csv";
    await dev(data, { endpoint: aws.current.moto.endpoint, suffix: "-dev", once: true, label: "digit", trees: 6, groveSize: 2, seed: 3 }, { stdout: stdout.stream, stderr: stderr.stream });

    const reference = await referenceModel({ dataset: data, label: "digit", n_estimators: 6, grove_size: 2, seed: 3 });
    const id = reference.buildId;
    const model = await new S3BlobStore("canopy-artifacts-dev").get(keys.model(id));
    expect(Buffer.from(model!).equals(reference.model)).toBe(true);

    const err = stderr.text();
    expect(err).toContain("canopy: dev: emulating Lambda against http://127.0.0.1:");
    expect(err).toContain("CANOPY_TABLE=canopy-builds-dev");
    expect(err).toContain(`canopy: build ${id}: 3 groves, 6 trees\n`);
    // One line per grove landing, as canopy train prints them (the build's start, 0 landed, only sets the rate's base).
    const lines = err.split("\n").filter((l) => l.startsWith(`canopy: ${id}: groves `));
    expect(lines.map((l) => /groves (\d\/3) landed \((\d\/6) trees/.exec(l)?.slice(1).join(" "))).toEqual(["1/3 2/6", "2/3 4/6", "3/3 6/6"]);
    expect(err).toContain(`canopy: ${id}: all groves in; merging and evaluating\n`);
    expect(err).toMatch(new RegExp(`canopy: ${id}: estimated AWS cost \\$\\d+\\.\\d{6} \\([\\d.]+ GB-s at 1769 MB\\)`));
    expect(err).not.toContain("warning");
    const out = stdout.text();
    expect(out).toMatch(new RegExp(`^build +${id}: 6 trees in 3 groves$`, "m"));
    expect(out).toMatch(/^metrics +accuracy 0\.\d{4}/m);
    expect(out).toContain(`s3://canopy-artifacts-dev/${keys.model(id)}`);
    // The environment it set for the SDK is put back.
    expect(process.env.CANOPY_TABLE).toBe(aws.current.resources.table);
  });

  it("refuses --once without data, and says so in one line when the emulator is not there", { timeout: 60_000 }, async () => {
    await expect(dev(undefined, { endpoint: "http://127.0.0.1:1/", once: true })).rejects.toThrow("--once needs <data.csv>: it waits for the build it submits");
    const endpoint = aws.current.moto.endpoint;
    await expect(dev(undefined, { endpoint: "http://127.0.0.1:9/" }, { stderr: capture().stream })).rejects.toThrow(
      /^cannot reach the emulator at http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\); start LocalStack or moto_server first$/,
    );
    expect(process.env.AWS_ENDPOINT_URL).toBe(endpoint);
  });
});
