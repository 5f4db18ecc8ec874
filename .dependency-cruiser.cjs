// Import rules, checked by test/dependencies.test.ts (part of `npm test`); also `npx depcruise packages bench test scripts`.
//
// Packages are layered, bottom to top: forest <- core <- (runtime-local, runtime-aws, serving) <- functions <- cli.
// A package's sources import only packages below it; bench/, test/ and the packages' own tests may import anything.

/** Packages above each one: what its sources must not import. */
const ABOVE = {
  forest: ["core", "runtime-local", "runtime-aws", "serving", "functions", "cli"],
  core: ["runtime-local", "runtime-aws", "serving", "functions", "cli"],
  "runtime-local": ["functions", "cli"],
  "runtime-aws": ["functions", "cli"],
  serving: ["functions", "cli"],
  functions: ["cli"],
};

/** A path inside node_modules, or a module left unresolved under that name. */
const npmPackage = (names) => `(^|node_modules/)(${names.join("|")})(/|$)`;

/** Node's I/O and thread modules: the engine computes, the runtimes do I/O. */
const IO_MODULES = ["fs", "fs/promises", "worker_threads", "child_process", "net", "http", "https", "http2", "dgram", "cluster", "readline"];

// Known exceptions, each fixed on another branch; remove an entry once that lands.
const KNOWN_CYCLES = [
  // core: type-only import circles, ports -> notification -> report -> submit -> ports, and through cost.ts
  // (notification -> cost -> report, report <-> cost).
  "^packages/core/src/(ports|notification|report|submit|cost)\\.ts$",
];
const KNOWN_COMMAND_IMPORTS = {
  // cli: publish and dev reuse train's summary; models and promote share registry's target options.
  publish: ["train"],
  dev: ["train"],
  models: ["registry"],
  promote: ["registry"],
};
const command = (name) => `^packages/cli/src/commands/${name}\\.ts$`;

module.exports = {
  forbidden: [
    {
      name: "no-circular",
      comment: "Modules import each other in one direction (type-only imports included).",
      severity: "error",
      from: { pathNot: KNOWN_CYCLES },
      to: { circular: true, pathNot: KNOWN_CYCLES },
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
      from: { path: command("([^/]+)"), pathNot: Object.keys(KNOWN_COMMAND_IMPORTS).map(command) },
      to: { path: "^packages/cli/src/commands/", pathNot: command("$1") },
    },
    ...Object.entries(KNOWN_COMMAND_IMPORTS).map(([name, allowed]) => ({
      name: "cli-commands-apart",
      comment: `${name} may import only ${allowed.join(", ")} (a known exception) among the commands.`,
      severity: "error",
      from: { path: command(name) },
      to: { path: "^packages/cli/src/commands/", pathNot: [name, ...allowed].map(command) },
    })),
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
