// report.html on the AWS path (moto): the aggregator writes it into the bucket; `canopy status` says where it is
// (with --url as a presigned HTTPS URL that serves it); `canopy report` renders it here from the bucket's report.json.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { keys } from "@canopy/core";
import { expect, it } from "vitest";
import { canopy, tempDir } from "../cli/support.ts";
import { adapters, deployedHandlers, runBuild } from "./e2e-support.ts";
import { useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator({ suffix: "-report", visibilityTimeoutSeconds: 5 });

it("the aggregator writes report.html; status shows it, --url presigns it; canopy report writes it from the bucket", { timeout: 120_000 }, async () => {
  const resources = aws.current.resources;
  const ports = adapters(resources);
  const run = await runBuild({ resources, handlers: deployedHandlers(), submit: ports });
  const { buildId } = run;
  const stored = new TextDecoder().decode((await ports.blobs.get(keys.reportHtml(buildId)))!);
  expect(stored).toContain(`<h1>Canopy build ${buildId}: digits.csv</h1>`);

  // The CLI finds the bucket and table through the CANOPY_* variables the harness set (as under sst shell).
  const cwd = await tempDir();
  const status = await canopy(["status", buildId], cwd);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(new RegExp(`^page +s3://${resources.bucket}/builds/${buildId}/report\\.html$`, "m"));

  const signed = await canopy(["status", buildId, "--url", "--json"], cwd);
  expect(signed.code).toBe(0);
  const page = (JSON.parse(signed.stdout) as { page: string }).page;
  expect(page).toMatch(new RegExp(`^${aws.current.moto.endpoint}/${resources.bucket}/builds/${buildId}/report\\.html\\?.*X-Amz-Signature=`));
  const fetched = await fetch(page);
  expect(fetched.status).toBe(200);
  expect(fetched.headers.get("content-type")).toBe("text/html; charset=utf-8");
  expect(await fetched.text()).toBe(stored);

  // canopy report renders the bucket's report.json here: the same page the aggregator wrote.
  const written = await canopy(["report", buildId, "--aws", "--json"], cwd);
  expect(written.code, written.stderr).toBe(0);
  const out = JSON.parse(written.stdout) as { buildId: string; path: string; bytes: number };
  expect(out).toMatchObject({ buildId, path: join(cwd, `${buildId}.report.html`) });
  expect(await readFile(out.path, "utf8")).toBe(stored);
  expect(out.bytes).toBe(Buffer.byteLength(stored));

  const unknown = await canopy(["report", "b-0000000000000000", "--aws"], cwd);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toBe(`canopy: error: build b-0000000000000000 has no report in s3://${resources.bucket}/builds/b-0000000000000000/report.json (not completed, or not this app's build)\n`);
  const local = await canopy(["status", buildId, "--url", "--root", ".canopy"], cwd);
  expect(local.code).toBe(2);
  expect(local.stderr).toContain("--url presigns an S3 URL");
});
