import {
  checkAliasName,
  DEFAULT_ALIAS,
  errorLine,
  inShort,
  isBuildId,
  isPartitionRunId,
  keys,
  parsePartitionedModel,
  PartitionedPredictor,
  RegistryError,
  sha256Hex,
  systemClock,
  type BlobStore,
  type Clock,
  type ModelRegistry,
  type PartitionedModel,
} from "@canopy/core";
import { Forest } from "@canopy/forest";
import { ServingError } from "./errors.ts";

/** Which model a request wants: a build or a partitioned run (`p-` id), an alias, or (undefined) the provider's default. */
export type ModelSelector = { buildId: string } | { alias: string } | undefined;

export interface ServedModel {
  kind?: "single";
  forest: Forest;
  /** The build the model came from; undefined for a model file served as is. */
  buildId?: string;
  /** The alias the request resolved through, if it named one (or the default is one). */
  alias?: string;
  /** Size of the model binary. */
  bytes: number;
  /** SHA-256 (hex) of the model binary, when it was read through the cache. */
  sha256?: string;
  /** When this container loaded it (epoch ms). */
  loadedAt: number;
  /** Where it came from, for the summary: a file path, or `builds/<id>/model.canopy`. */
  source: string;
}

/** A partitioned model: its manifest, and a predictor that loads partition forests through the shared model cache. */
export interface ServedPartitionedModel {
  kind: "partitioned";
  model: PartitionedModel;
  predictor: PartitionedPredictor;
  /** The partitioned run (`p-` id). */
  buildId: string;
  alias?: string;
  /** Size of the manifest; partition models are counted in the cache as they load. */
  bytes: number;
  loadedAt: number;
  /** `partitions/<p-id>/model.json`, or the exported directory's model.json. */
  source: string;
}

export type AnyServedModel = ServedModel | ServedPartitionedModel;

export function isPartitioned(model: AnyServedModel): model is ServedPartitionedModel {
  return model.kind === "partitioned";
}

/** Gives the handler a loaded model for a selector; throws ServingError 404 for models it does not have. */
export interface ModelProvider {
  get(selector: ModelSelector): Promise<AnyServedModel>;
  /** What the default selector is, for the summary. */
  readonly defaultSelector: Exclude<ModelSelector, undefined>;
}

/** Where registry-backed serving reads from: alias resolution and model bytes by build id. */
export interface ModelStore {
  resolveAlias(alias: string): Promise<string | undefined>;
  modelBytes(buildId: string): Promise<Uint8Array | undefined>;
  /** A partitioned run's manifest (`partitions/<p-id>/model.json`); a store without one serves no partitioned models. */
  partitionedModel?(runId: string): Promise<Uint8Array | undefined>;
}

/** A ModelStore over the pipeline's ports: the registry for aliases, the blob store for `builds/<id>/model.canopy`. */
export function storeFromPorts(registry: Pick<ModelRegistry, "resolve">, blobs: Pick<BlobStore, "get">): ModelStore {
  return {
    resolveAlias: (alias) => registry.resolve(alias),
    modelBytes: (buildId) => blobs.get(keys.model(buildId)),
    partitionedModel: (runId) => blobs.get(keys.partitionedModel(runId)),
  };
}

/** Default budget of the model cache: the loaded models' sizes summed (CANOPY_MODEL_CACHE_MB sets it on the predict function). */
export const DEFAULT_MODEL_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * Loaded models by build id, kept across requests (a warm Lambda container reuses them), single models and the
 * partitions of partitioned ones alike (a partition is a build). The cache is bounded in bytes: the sizes of the
 * models it holds sum to at most `maxBytes` (and, if given, at most `capacity` models), least recently used
 * evicted first; the model just loaded is kept even when it alone is over the budget. Concurrent requests for a
 * model being loaded share the one load; a failed load is not kept.
 */
export class ModelCache {
  private readonly entries = new Map<string, Promise<ServedModel>>();
  /** Sizes of the loaded entries (a load in flight counts once it lands). */
  private readonly sizes = new Map<string, number>();
  private readonly clock: Clock;
  private readonly capacity: number;
  readonly maxBytes: number;
  /** How many times a model was actually read and decoded (not served from the cache). */
  loads = 0;

  constructor(
    private readonly read: (buildId: string) => Promise<Uint8Array | undefined>,
    options: { capacity?: number; maxBytes?: number; clock?: Clock } = {},
  ) {
    this.capacity = Math.max(1, options.capacity ?? Number.POSITIVE_INFINITY);
    this.maxBytes = Math.max(1, options.maxBytes ?? DEFAULT_MODEL_CACHE_BYTES);
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
    load.then(
      (model) => {
        if (this.entries.get(buildId) !== load) return; // evicted while loading
        this.sizes.set(buildId, model.bytes);
        this.evict(buildId);
      },
      () => {
        if (this.entries.get(buildId) === load) this.entries.delete(buildId);
      },
    );
    this.evict(buildId);
    return load;
  }

  /** Build ids held, least recently used first. */
  held(): string[] {
    return [...this.entries.keys()];
  }

  /** Bytes of the models held (loads in flight not counted). */
  heldBytes(): number {
    let sum = 0;
    for (const size of this.sizes.values()) sum += size;
    return sum;
  }

  /** Drops least recently used entries (never `keep`) until both bounds hold. */
  private evict(keep: string): void {
    let bytes = this.heldBytes();
    for (const id of this.entries.keys()) {
      const overCount = this.entries.size > this.capacity;
      if (!overCount && bytes <= this.maxBytes) return;
      // A load in flight frees no bytes: it goes only when there are too many entries.
      if (id === keep || (!overCount && !this.sizes.has(id))) continue;
      this.entries.delete(id);
      bytes -= this.sizes.get(id) ?? 0;
      this.sizes.delete(id);
    }
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
    return { forest, buildId, bytes: bytes.byteLength, sha256: sha256Hex(bytes), loadedAt: this.clock.now(), source: keys.model(buildId) };
  }
}

/**
 * A partitioned model served from a manifest: partition forests come from `cache` (by build id) when a row asks
 * for them, each checked against the manifest's SHA-256 (a mismatch is a 500 naming the file).
 */
export function servePartitioned(model: PartitionedModel, cache: ModelCache, info: { bytes: number; source: string; clock?: Clock }): ServedPartitionedModel {
  const predictor = new PartitionedPredictor(model, async (ref, key) => {
    const which = key === undefined ? "the fallback" : `partition ${inShort(model.partitions[key]?.value ?? key, 40)}`;
    const loaded = await cache.get(ref.build).catch((err: unknown) => {
      // The manifest names it, so a missing model is the store's fault, not the request's.
      if (err instanceof ServingError && err.status === 404) throw new ServingError(500, `${keys.model(ref.build)} (${which} of ${model.runId}) is missing`);
      throw err;
    });
    if (loaded.bytes !== ref.bytes || loaded.sha256 !== ref.sha256) {
      throw new ServingError(500, `${loaded.source} (${which} of ${model.runId}) is not the model its manifest names: it was changed or replaced`);
    }
    return loaded.forest;
  });
  return { kind: "partitioned", model, predictor, buildId: model.runId, bytes: info.bytes, loadedAt: (info.clock ?? systemClock).now(), source: info.source };
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
  /** Most models kept loaded (partitions count one each). Default: no count limit, only the byte budget. */
  maxModels?: number;
  /** Budget of the model cache in bytes (the loaded models' sizes summed). Default DEFAULT_MODEL_CACHE_BYTES. */
  maxModelBytes?: number;
  clock?: Clock;
  /** Called when a failed alias refresh is answered with the previous resolution. */
  onStale?: (alias: string, err: unknown) => void;
}

/** Partitioned runs' manifests kept (they are small, and a run's manifest never changes). */
const MANIFESTS_KEPT = 64;

/** Models by build id, partitioned run id or alias from a ModelStore, behind the model and alias caches. */
export function registryModels(store: ModelStore, options: RegistryModelsOptions = {}): ModelProvider & { cache: ModelCache; aliases: AliasCache } {
  const clock = options.clock ?? systemClock;
  const cache = new ModelCache((id) => store.modelBytes(id), {
    ...(options.maxModels !== undefined ? { capacity: options.maxModels } : {}),
    ...(options.maxModelBytes !== undefined ? { maxBytes: options.maxModelBytes } : {}),
    clock,
  });
  const aliases = new AliasCache((a) => store.resolveAlias(a), { ttlMs: options.aliasTtlMs, clock, onStale: options.onStale });
  const defaultSelector = options.defaultSelector ?? { alias: DEFAULT_ALIAS };
  const manifests = new Map<string, Promise<ServedPartitionedModel>>();

  const partitioned = (runId: string): Promise<ServedPartitionedModel> => {
    const hit = manifests.get(runId);
    if (hit) return hit;
    const load = (async () => {
      const bytes = store.partitionedModel ? await store.partitionedModel(runId) : undefined;
      if (!bytes) throw new ServingError(404, `partitioned model ${runId} not found (no finished partitioned run with that id)`);
      const source = keys.partitionedModel(runId);
      let model: PartitionedModel;
      try {
        model = parsePartitionedModel(new TextDecoder().decode(bytes), source);
      } catch (err) {
        throw new ServingError(500, `partitioned model ${runId} cannot be read: ${errorLine(err)}`);
      }
      return servePartitioned(model, cache, { bytes: bytes.byteLength, source, clock });
    })();
    manifests.set(runId, load);
    load.catch(() => {
      if (manifests.get(runId) === load) manifests.delete(runId);
    });
    while (manifests.size > MANIFESTS_KEPT) manifests.delete(manifests.keys().next().value!);
    return load;
  };
  const byId = (id: string): Promise<AnyServedModel> => (isPartitionRunId(id) ? partitioned(id) : cache.get(id));

  return {
    cache,
    aliases,
    defaultSelector,
    async get(selector) {
      const s = selector ?? defaultSelector;
      if ("buildId" in s) return byId(s.buildId);
      const buildId = await aliases.get(s.alias);
      if (buildId === undefined) throw new ServingError(404, `alias ${inShort(s.alias)} is not set (canopy promote <build-id> --alias ${s.alias})`);
      const model = await byId(buildId);
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

/** The selector a request's query asks for: `?model=<build-id|p-id>` or `?alias=<name>` (not both), else undefined. */
export function selectorFromQuery(query: Record<string, string | undefined>): ModelSelector {
  const model = query.model;
  const alias = query.alias;
  if (model !== undefined && alias !== undefined) throw new ServingError(400, "give ?model=<build-id> or ?alias=<name>, not both");
  if (model !== undefined) {
    if (!isBuildId(model) && !isPartitionRunId(model)) throw new ServingError(400, `invalid build id ${inShort(model)} in ?model (expected b- and 16 hex digits)`);
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
