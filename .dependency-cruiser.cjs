// Import rules, checked by test/dependencies.test.ts (part of `npm test`); also `npx depcruise packages bench test scripts`.
//
// Packages are layered, bottom to top: forest <- core <- (report, runtime-local, runtime-aws, serving) <- functions
// <- cli; report (pure rendering) sits beside the runtimes, which call it.
// A package's sources import only packages below it; bench/, test/ and the packages' own tests may import anything.

/** Packages above each one: what its sources must not import. */
const ABOVE = {
  forest: ["core", "report", "runtime-local", "runtime-aws", "serving", "functions", "cli"],
  core: ["report", "runtime-local", "runtime-aws", "serving", "functions", "cli"],
  report: ["runtime-local", "runtime-aws", "serving", "functions", "cli"],
  "runtime-local": ["functions", "cli"],
  "runtime-aws": ["functions", "cli"],
  serving: ["functions", "cli"],
  functions: ["cli"],
};

/** A path inside node_modules, or a module left unresolved under that name. */
const npmPackage = (names) => `(^|node_modules/)(${names.join("|")})(/|$)`;

/** Node's I/O and thread modules: the engine computes, the runtimes do I/O. */
const IO_MODULES = ["fs", "fs/promises", "worker_threads", "child_process", "net", "http", "https", "http2", "dgram", "cluster", "readline"];

const command = (name) => `^packages/cli/src/commands/${name}\\.ts$`;

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "Modules import each other in one direction (type-only imports included).",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    ...Object.entries(ABOVE).map(([pkg, above]) => ({
      name: `layers-${pkg}`,
      comment: `${pkg} sits below ${above.join(", ")}: its sources import none of them.`,
      severity: "error",
      from: { path: `^packages/${pkg}/src/` },
      to: { path: `^packages/(${above.join("|")})/` },
    })),
    {
      name: "forest-pure",
      comment: "The engine does no I/O and starts no threads: those belong to the runtimes.",
      severity: "error",
      from: { path: "^packages/forest/src/" },
      to: { dependencyTypes: ["core"], path: `^(node:)?(${IO_MODULES.join("|")})$` },
    },
    {
      name: "forest-no-tooling-or-second-engine",
      comment: "No bundler at run time, and one learner: ml-random-forest is an export format (plain JSON), its engine lives in bench/.",
      severity: "error",
      from: { path: "^packages/forest/src/" },
      to: { path: npmPackage(["esbuild", "ml-random-forest", "ml-cart"]) },
    },
    {
      name: "cli-commands-apart",
      comment: "A CLI command module does not import another one; what they share lives outside commands/.",
      severity: "error",
      from: { path: command("([^/]+)") },
      to: { path: "^packages/cli/src/commands/", pathNot: command("$1") },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["(^|/)dist/", "(^|/)\\.sst/", "(^|/)node_modules/\\.cache/"] },
    // Type-only imports count: a circle of types is still a circle.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default", "types"] },
  },
};
