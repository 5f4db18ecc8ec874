#!/usr/bin/env node
// The packages export TypeScript sources: register tsx's loader, then run the CLI from source.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv.slice(2));
