// The build: what runs under plain Node — the CLI and the embedded runtime's trainer thread — compiled to
// JavaScript in the packages' dist/ folders. `npm ci` runs it (the root `prepare` script), `npm run build` after
// editing sources; vitest and the bench run it first, so they never start a stale trainer thread.
//
// Each output is an esbuild bundle of our workspace packages (TypeScript sources, inlined) with every other
// package left as an import that Node resolves from node_modules. Lambda bundles are not built here: SST
// bundles each handler from the sources when it deploys.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build as esbuild, type BuildOptions, type Plugin } from "esbuild";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** One output folder: its entry points by output name, and whether chunks may be shared between them. */
interface Target {
  outdir: string;
  entries: Record<string, string>;
  splitting: boolean;
}

const TRAINER_THREAD = "packages/runtime-local/src/worker.ts";

export const TARGETS: Target[] = [
  // The trainer thread the embedded runtime starts when it runs from sources (tests, tsx, the bench).
  { outdir: "packages/runtime-local/dist", entries: { worker: TRAINER_THREAD }, splitting: false },
  // The CLI, with its own copy of the trainer thread beside it (the runtime starts ./worker.js next to its code).
  // Commands load lazily, so they become chunks.
  { outdir: "packages/cli/dist", entries: { main: "packages/cli/src/main.ts", worker: TRAINER_THREAD }, splitting: true },
];

/** Workspace packages are bundled from source; every other bare import stays external. */
const externalPackages: Plugin = {
  name: "external-packages",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@canopy/") ? undefined : { path: args.path, external: true }));
  },
};

const COMMON: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Error classes are told apart by name (across threads too): bundling must not rename them.
  keepNames: true,
  plugins: [externalPackages],
  logLevel: "silent",
  write: false,
};

/** Bundles one entry to `outfile` (for a test's own worker module); writes only if the bytes changed. */
export async function bundleFile(entry: string, outfile: string): Promise<void> {
  const result = await esbuild({ ...COMMON, entryPoints: [entry], outfile });
  for (const file of result.outputFiles ?? []) writeIfChanged(file.path, file.contents);
}

async function buildTarget(target: Target): Promise<string[]> {
  const outdir = join(ROOT, target.outdir);
  const result = await esbuild({
    ...COMMON,
    entryPoints: Object.entries(target.entries).map(([out, entry]) => ({ in: join(ROOT, entry), out })),
    outdir,
    splitting: target.splitting,
    // Chunks sit beside the entries: code finds ./worker.js and ../package.json relative to its own file.
    chunkNames: "[name]-[hash]",
  });
  const written = new Set<string>();
  for (const file of result.outputFiles ?? []) {
    writeIfChanged(file.path, file.contents);
    written.add(file.path);
  }
  // Chunks of earlier builds.
  for (const name of readdirSync(outdir)) if (!written.has(join(outdir, name))) rmSync(join(outdir, name), { recursive: true, force: true });
  return [...written].map((f) => relative(ROOT, f));
}

/** Builds every target; returns the files written, relative to the repo. */
export async function build(): Promise<string[]> {
  const files = await Promise.all(TARGETS.map(buildTarget));
  return files.flat();
}

/** Same bytes: nothing is written (mtimes stay). Else a temp file renamed over the old one, so no thread reads half a file. */
function writeIfChanged(path: string, contents: Uint8Array): void {
  try {
    if (Buffer.from(contents).equals(readFileSync(path))) return;
  } catch {
    // not there yet
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    const files = await build();
    process.stdout.write(`build: ${files.length} files in ${TARGETS.map((t) => t.outdir).join(", ")}\n`);
  } catch (error) {
    const errors = (error as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors;
    const lines = errors?.map((e) => `build: ${e.location ? `${e.location.file}:${e.location.line}: ` : ""}${e.text}`) ?? [`build: ${(error as Error).message}`];
    process.stderr.write(`${lines.join("\n")}\n`);
    process.exitCode = 1;
  }
}
