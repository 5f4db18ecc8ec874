#!/usr/bin/env node
// The CLI compiled to JavaScript (dist/, made by `npm run build`, which `npm ci` runs).
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("canopy: error: the CLI is not built; run `npm run build` (npm ci does it)\n");
  process.exit(1);
}
process.exitCode = await (await import(main.href)).main(process.argv.slice(2));
