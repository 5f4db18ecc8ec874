import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker, type WorkerOptions } from "node:worker_threads";

const bundled = new Map<string, string>();

/**
 * Starts a worker thread on an ES module. A .js module starts as is. A .ts module (running from sources under
 * tsx or vitest) is bundled once per process with esbuild into plain JS first: Node 20 does not run loader
 * hooks inside worker threads. Our workspace packages (@canopy/*, TypeScript sources) are bundled in; other
 * packages stay external and resolve from node_modules as usual.
 */
export function startModuleWorker(module: URL, options?: WorkerOptions): Worker {
  if (!module.pathname.endsWith(".ts")) return new Worker(module, options);
  let file = bundled.get(module.href);
  if (file === undefined) {
    const require = createRequire(import.meta.url);
    const esbuild = require("esbuild") as typeof import("esbuild");
    const nodeModules = dirname(dirname(require.resolve("esbuild/package.json")));
    const result = esbuild.buildSync({
      entryPoints: [fileURLToPath(module)],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      logLevel: "error",
      external: externalPackages(nodeModules),
    });
    const code = result.outputFiles[0].contents;
    // Named by content: every run of the same sources reuses one file, so nothing piles up or needs cleaning.
    // Inside node_modules, so the bundle's package imports resolve as they do for the sources.
    const cache = join(nodeModules, ".cache", "canopy");
    mkdirSync(cache, { recursive: true });
    file = join(cache, `worker-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, code);
      renameSync(tmp, file);
    }
    bundled.set(module.href, file);
  }
  return new Worker(file, options);
}

/** Every installed package except our own workspaces, as esbuild externals (buildSync takes no plugins). */
function externalPackages(nodeModules: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) {
      if (entry === "@canopy") continue;
      for (const sub of readdirSync(join(nodeModules, entry))) names.push(`${entry}/${sub}`);
    } else names.push(entry);
  }
  return names.flatMap((n) => [n, `${n}/*`]);
}
