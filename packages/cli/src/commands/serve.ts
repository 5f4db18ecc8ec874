import { stat } from "node:fs/promises";
import { type Command, InvalidArgumentError } from "commander";
import { parseInteger, parseNumber } from "../args.ts";
import { UsageError } from "../errors.ts";

export interface ServeOptions {
  model: string;
  port: number;
  host: string;
  root: string;
  maxRows?: number;
  aliasTtl: number;
  verbose?: boolean;
  allowHost?: string[];
  requestTimeout: number;
  /** Budget of the model cache in MB (the loaded models' file sizes summed). */
  cacheMb?: number;
}

export interface ServeIo {
  stderr?: NodeJS.WritableStream;
  /** Stops the server (default: SIGINT / SIGTERM). */
  signal?: AbortSignal;
  /** Called once the server listens, with its URL. */
  onListening?: (url: string) => void;
}

function parsePort(text: string): number {
  const port = parseInteger(text);
  if (port < 0 || port > 65_535) throw new InvalidArgumentError("Expected a port number 0-65535 (0: any free port).");
  return port;
}

function parseSeconds(text: string): number {
  const s = parseNumber(text);
  if (s < 0) throw new InvalidArgumentError("Expected a number of seconds >= 0.");
  return s;
}

function parsePositiveSeconds(text: string): number {
  const s = parseNumber(text);
  if (!(s > 0) || s > 3600) throw new InvalidArgumentError("Expected a number of seconds > 0 and at most 3600.");
  return s;
}

function collectHost(text: string, previous: string[] | undefined): string[] {
  const name = text.trim();
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/.test(name)) throw new InvalidArgumentError("Expected a host name or address, without a port.");
  return [...(previous ?? []), name];
}

function parseMegabytes(text: string): number {
  const n = parseNumber(text);
  if (!(n > 0)) throw new InvalidArgumentError("Expected a number of megabytes > 0.");
  return n;
}

function parseMaxRows(text: string): number {
  const n = parseInteger(text);
  if (n < 1) throw new InvalidArgumentError("Expected an integer >= 1.");
  return n;
}

/** `canopy serve`; the definition only, the engine and the server are imported when it runs. */
export function addServeCommand(canopy: Command): Command {
  return canopy
    .command("serve")
    .summary("serve predictions over HTTP (the deployed predict function's handler, locally)")
    .description(
      "Serve a model on a local HTTP server with the same handler as the deployed predict function: POST / or /predict " +
        'with JSON {"rows": [[...]]} or {"records": [{...}]} or CSV (header row), ?proba=1 for probabilities; GET / for ' +
        "a summary. With a build id or an alias, requests may also pick ?model=<build-id> or ?alias=<name> from the local " +
        "store, and a promotion is picked up within --alias-ttl. A partitioned model (a p- id, an alias pointing at one, or an " +
        'exported directory) takes {"records": [...]} or CSV and routes each row by its partition column; its partitions ' +
        "are loaded as rows ask for them, into a model cache bounded by --cache-mb.",
    )
    .option("--model <file|build-id|alias>", "a model file, a train --out directory, an exported partitioned model, a local build or partitioned run id, or an alias", "production")
    .option("--port <port>", "port to listen on (0: any free port)", parsePort, 8080)
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--root <dir>", "local store of packs, builds, aliases and the ledger", ".canopy")
    .option("--max-rows <n>", "most rows per request (default 10000)", parseMaxRows)
    .option("--alias-ttl <seconds>", "how long an alias resolution is reused", parseSeconds, 1)
    .option("--allow-host <name>", "also answer requests for this host name (repeatable); on a loopback --host only localhost, 127.0.0.1 and [::1] are answered", collectHost)
    .option("--request-timeout <seconds>", "most time for a whole request, body included; a slower one gets 408", parsePositiveSeconds, 30)
    .option("--cache-mb <mb>", "budget of the model cache: the loaded models' sizes summed, least recently used evicted first (default 256)", parseMegabytes)
    .option("--verbose", "one line per request on stderr")
    .action(async (options: ServeOptions) => {
      await serve(options);
    });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function serve(options: ServeOptions, io: ServeIo = {}): Promise<void> {
  const stderr = io.stderr ?? process.stderr;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const serving = await import("@canopy/serving");
  const core = await import("@canopy/core");
  const ref = options.model;

  let models: import("@canopy/serving").ModelProvider;
  let what: string;
  let notFound = (err: Error) => err.message;
  const cache = options.cacheMb !== undefined ? { maxModelBytes: Math.round(options.cacheMb * 1024 * 1024) } : {};
  const isRunId = (id: string) => core.isBuildId(id) || core.isPartitionRunId(id);
  if ((await exists(ref)) || !(isRunId(ref) || core.isAliasName(ref))) {
    // A path (a path wins over an id or alias spelled the same), or something that can only be a path.
    const { openModelRef } = await import("../model.ts");
    const opened = await openModelRef(ref, options.root);
    if (opened.kind === "partitioned") {
      // An exported partitioned model: its manifest and partition files, read as a store that has nothing else.
      const { readFile } = await import("node:fs/promises");
      const { runId } = opened.model;
      const refs = [...Object.values(opened.model.partitions), ...(opened.model.fallback ? [opened.model.fallback] : [])];
      const files = new Map(refs.map((r) => [r.build, opened.fileOf(r.build, r.file)]));
      const read = async (path: string | undefined) => (path === undefined ? undefined : new Uint8Array(await readFile(path)));
      const store: import("@canopy/serving").ModelStore = {
        resolveAlias: async () => undefined,
        modelBytes: (build) => read(files.get(build)),
        partitionedModel: (id) => read(id === runId ? opened.path : undefined),
      };
      models = serving.registryModels(store, { defaultSelector: { buildId: runId }, ...cache });
    } else models = serving.fixedModel(opened.forest, { bytes: opened.bytes, source: opened.path, ...(opened.buildId ? { buildId: opened.buildId } : {}) });
    what = opened.path;
  } else {
    const { DiskBlobStore, DiskModelRegistry } = await import("@canopy/runtime-local");
    const registry = new DiskModelRegistry(options.root);
    const store = serving.storeFromPorts(registry, new DiskBlobStore(options.root));
    const defaultSelector = isRunId(ref) ? { buildId: ref } : { alias: ref };
    models = serving.registryModels(store, { defaultSelector, aliasTtlMs: options.aliasTtl * 1000, ...cache });
    const kind = (id: string) => (core.isPartitionRunId(id) ? "partitioned run" : "build");
    what = isRunId(ref) ? `${kind(ref)} ${ref}` : `alias ${ref}`;
    notFound = () => `${kind(ref)} ${ref} has no model in ${options.root} (not found, or not finished)`;
    if (core.isAliasName(ref) && !isRunId(ref)) {
      const target = await registry.resolve(ref);
      notFound = () =>
        target === undefined
          ? `alias ${core.inShort(ref)} is not set in ${options.root} (canopy promote <build-id> --alias ${ref})`
          : `alias ${core.inShort(ref)} points at ${kind(target)} ${target}, which has no model in ${options.root}`;
    }
  }
  // Load the default model now: a wrong --model fails here, not on the first request.
  let first: import("@canopy/serving").AnyServedModel;
  try {
    first = await models.get(undefined);
  } catch (err) {
    if (err instanceof serving.ServingError && err.status === 404) throw new UsageError(notFound(err));
    throw err;
  }
  if (first.buildId && !what.includes(first.buildId)) what += ` (${first.buildId})`;

  const handler = serving.createHandler({
    models,
    ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}),
    onError: (err) => note(`error: ${core.errorLine(err)}`),
  });
  let listening: import("@canopy/serving").Listening;
  try {
    listening = await serving.listen(handler, {
      port: options.port,
      host: options.host,
      requestTimeoutMs: options.requestTimeout * 1000,
      ...(options.allowHost ? { extraHosts: options.allowHost } : {}),
      ...(options.verbose ? { onResponse: (req, res, ms) => note(`${req.method} ${req.path} ${res.status} ${ms.toFixed(1)} ms`) } : {}),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new UsageError(`port ${options.port} on ${options.host} is in use: pick another with --port`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new UsageError(`cannot listen on ${options.host}: no such local address`);
    throw err;
  }
  const { printable } = await import("@canopy/forest");
  if (serving.isPartitioned(first)) {
    const p = first.model;
    const partitions = Object.keys(p.partitions).length;
    note(printable(`serving ${what}: ${p.task}, ${partitions} partitions by ${p.partitionBy}${p.fallback ? " and a fallback" : ""}, ${p.features.length} features (partitions load as rows ask for them)`));
  } else {
    const f = first.forest;
    note(printable(`serving ${what}: ${f.task}, ${f.nTrees} trees, ${f.nFeatures} features, label ${f.labelName}`));
  }
  note(`listening on ${listening.url} (POST / with JSON rows/records or CSV, ?proba=1; GET / for the summary); Ctrl-C to stop`);
  io.onListening?.(listening.url);

  await new Promise<void>((resolve) => {
    if (io.signal) {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener("abort", () => resolve(), { once: true });
      return;
    }
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await listening.close();
  note("stopped");
}
