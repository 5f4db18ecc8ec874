import { checkAliasName, DEFAULT_ALIAS, errorLine, inShort, isBuildId, keys, RegistryError, systemClock, type BlobStore, type Clock, type ModelRegistry } from "@canopy/core";
import { Forest } from "@canopy/forest";
import { ServingError } from "./errors.ts";

/** Which model a request wants: a build, an alias, or (undefined) the provider's default. */
export type ModelSelector = { buildId: string } | { alias: string } | undefined;

export interface ServedModel {
  forest: Forest;
  /** The build the model came from; undefined for a model file served as is. */
  buildId?: string;
  /** The alias the request resolved through, if it named one (or the default is one). */
  alias?: string;
  /** Size of the model binary. */
  bytes: number;
  /** When this container loaded it (epoch ms). */
  loadedAt: number;
  /** Where it came from, for the summary: a file path, or `builds/<id>/model.canopy`. */
  source: string;
}

/** Gives the handler a loaded model for a selector; throws ServingError 404 for models it does not have. */
export interface ModelProvider {
  get(selector: ModelSelector): Promise<ServedModel>;
  /** What the default selector is, for the summary. */
  readonly defaultSelector: Exclude<ModelSelector, undefined>;
}

/** Where registry-backed serving reads from: alias resolution and model bytes by build id. */
export interface ModelStore {
  resolveAlias(alias: string): Promise<string | undefined>;
  modelBytes(buildId: string): Promise<Uint8Array | undefined>;
}

/** A ModelStore over the pipeline's ports: the registry for aliases, the blob store for `builds/<id>/model.canopy`. */
export function storeFromPorts(registry: Pick<ModelRegistry, "resolve">, blobs: Pick<BlobStore, "get">): ModelStore {
  return {
    resolveAlias: (alias) => registry.resolve(alias),
    modelBytes: (buildId) => blobs.get(keys.model(buildId)),
  };
}

/**
 * Loaded models by build id, kept across requests (a warm Lambda container reuses them). At most `capacity`
 * are kept, least recently used evicted first: a model can be tens of MB, and `?model=` can name any build.
 * Concurrent requests for a model being loaded share the one load; a failed load is not kept.
 */
export class ModelCache {
  private readonly entries = new Map<string, Promise<ServedModel>>();
  private readonly clock: Clock;
  private readonly capacity: number;
  /** How many times a model was actually read and decoded (not served from the cache). */
  loads = 0;

  constructor(
    private readonly read: (buildId: string) => Promise<Uint8Array | undefined>,
    options: { capacity?: number; clock?: Clock } = {},
  ) {
    this.capacity = Math.max(1, options.capacity ?? 2);
    this.clock = options.clock ?? systemClock;
  }

  get(buildId: string): Promise<ServedModel> {
    const hit = this.entries.get(buildId);
    if (hit) {
      this.entries.delete(buildId); // re-insert: most recently used last
      this.entries.set(buildId, hit);
      return hit;
    }
    const load = this.load(buildId);
    this.entries.set(buildId, load);
    load.catch(() => {
      if (this.entries.get(buildId) === load) this.entries.delete(buildId);
    });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return load;
  }

  /** Build ids held, least recently used first. */
  held(): string[] {
    return [...this.entries.keys()];
  }

  private async load(buildId: string): Promise<ServedModel> {
    const bytes = await this.read(buildId);
    if (!bytes) throw new ServingError(404, `model ${buildId} not found (no completed build with that id)`);
    this.loads++;
    let forest: Forest;
    try {
      forest = Forest.load(bytes);
    } catch (err) {
      throw new ServingError(500, `model ${buildId} cannot be loaded: ${errorLine(err)}`);
    }
    return { forest, buildId, bytes: bytes.byteLength, loadedAt: this.clock.now(), source: keys.model(buildId) };
  }
}

interface AliasEntry {
  buildId: string | undefined;
  fetchedAt: number;
}

/**
 * Alias -> build id, each answer kept for `ttlMs`, so a warm container asks the registry at most once per alias
 * per TTL and picks up a promotion within it. A refresh that fails keeps serving the last answer (the
 * registry being briefly unreachable should not take predictions down); with no answer yet, the error is
 * thrown. "Not set" is cached too. At most `maxEntries` aliases are kept (requests can name any alias).
 */
export class AliasCache {
  private readonly entries = new Map<string, AliasEntry>();
  private readonly pending = new Map<string, Promise<string | undefined>>();
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  /** Registry lookups made (cache misses and refreshes). */
  lookups = 0;

  constructor(
    private readonly resolve: (alias: string) => Promise<string | undefined>,
    options: { ttlMs?: number; clock?: Clock; maxEntries?: number; onStale?: (alias: string, err: unknown) => void } = {},
  ) {
    this.ttlMs = options.ttlMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.maxEntries = options.maxEntries ?? 100;
    this.onStale = options.onStale;
  }

  private readonly onStale?: (alias: string, err: unknown) => void;

  async get(alias: string): Promise<string | undefined> {
    const entry = this.entries.get(alias);
    if (entry && this.clock.now() - entry.fetchedAt < this.ttlMs) return entry.buildId;
    let refresh = this.pending.get(alias);
    if (!refresh) {
      refresh = this.refresh(alias, entry);
      this.pending.set(alias, refresh);
      void refresh.then(
        () => this.pending.delete(alias),
        () => this.pending.delete(alias),
      );
    }
    return refresh;
  }

  private async refresh(alias: string, stale: AliasEntry | undefined): Promise<string | undefined> {
    this.lookups++;
    let buildId: string | undefined;
    try {
      buildId = await this.resolve(alias);
    } catch (err) {
      if (!stale || err instanceof RegistryError) throw err;
      this.onStale?.(alias, err);
      return stale.buildId;
    }
    this.entries.delete(alias);
    this.entries.set(alias, { buildId, fetchedAt: this.clock.now() });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return buildId;
  }
}

export interface RegistryModelsOptions {
  /** What a request without ?model or ?alias gets. Default: the alias `production`. */
  defaultSelector?: Exclude<ModelSelector, undefined>;
  /** How long an alias resolution is reused. Default 10 s. */
  aliasTtlMs?: number;
  /** Models kept loaded. Default 2. */
  maxModels?: number;
  clock?: Clock;
  /** Called when a failed alias refresh is answered with the previous resolution. */
  onStale?: (alias: string, err: unknown) => void;
}

/** Models by build id or alias from a ModelStore, behind the model and alias caches. */
export function registryModels(store: ModelStore, options: RegistryModelsOptions = {}): ModelProvider & { cache: ModelCache; aliases: AliasCache } {
  const clock = options.clock ?? systemClock;
  const cache = new ModelCache((id) => store.modelBytes(id), { capacity: options.maxModels, clock });
  const aliases = new AliasCache((a) => store.resolveAlias(a), { ttlMs: options.aliasTtlMs, clock, onStale: options.onStale });
  const defaultSelector = options.defaultSelector ?? { alias: DEFAULT_ALIAS };
  return {
    cache,
    aliases,
    defaultSelector,
    async get(selector) {
      const s = selector ?? defaultSelector;
      if ("buildId" in s) return cache.get(s.buildId);
      const buildId = await aliases.get(s.alias);
      if (buildId === undefined) throw new ServingError(404, `alias ${inShort(s.alias)} is not set (canopy promote <build-id> --alias ${s.alias})`);
      const model = await cache.get(buildId);
      return { ...model, alias: s.alias };
    },
  };
}

/** One model (e.g. a file given to `canopy serve`): served by default and by its build id, if it has one. */
export function fixedModel(forest: Forest, info: { buildId?: string; bytes: number; source: string; clock?: Clock }): ModelProvider {
  const model: ServedModel = {
    forest,
    ...(info.buildId !== undefined ? { buildId: info.buildId } : {}),
    bytes: info.bytes,
    loadedAt: (info.clock ?? systemClock).now(),
    source: info.source,
  };
  return {
    defaultSelector: info.buildId !== undefined ? { buildId: info.buildId } : { alias: "default" },
    async get(selector) {
      if (selector === undefined || ("buildId" in selector && selector.buildId === info.buildId)) return model;
      const asked = "buildId" in selector ? `model ${selector.buildId}` : `alias ${inShort(selector.alias)}`;
      throw new ServingError(404, `${asked} is not served here: this server serves one model (${info.buildId ?? info.source})`);
    },
  };
}

/** The selector a request's query asks for: `?model=<build-id>` or `?alias=<name>` (not both), else undefined. */
export function selectorFromQuery(query: Record<string, string | undefined>): ModelSelector {
  const model = query.model;
  const alias = query.alias;
  if (model !== undefined && alias !== undefined) throw new ServingError(400, "give ?model=<build-id> or ?alias=<name>, not both");
  if (model !== undefined) {
    if (!isBuildId(model)) throw new ServingError(400, `invalid build id ${inShort(model)} in ?model (expected b- and 16 hex digits)`);
    return { buildId: model };
  }
  if (alias !== undefined) {
    try {
      checkAliasName(alias);
    } catch (err) {
      throw new ServingError(400, `${(err as Error).message} (in ?alias)`);
    }
    return { alias };
  }
  return undefined;
}
