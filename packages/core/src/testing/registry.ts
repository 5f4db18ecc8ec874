import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { newBuildRecord } from "../ledger.ts";
import { systemClock, type BuildLedger, type Clock } from "../ports.ts";
import { RegistryError } from "../errors.ts";
import { checkAliasName, registryRules, type AliasRecord, type ModelRegistry } from "../registry.ts";
import { groveStats } from "./ledger-contract.ts";

/** The reference registry: aliases in a Map, promotion checked against a ledger. */
export class MemoryRegistry implements ModelRegistry {
  private readonly aliases = new Map<string, AliasRecord>();
  private readonly clock: Clock;

  constructor(
    private readonly ledger: Pick<BuildLedger, "get">,
    options: { clock?: Clock } = {},
  ) {
    this.clock = options.clock ?? systemClock;
  }

  async promote(buildId: string, alias: string): Promise<AliasRecord> {
    checkAliasName(alias);
    const build = await this.ledger.get(buildId);
    const record = registryRules.promote(build, buildId, alias, this.aliases.get(alias)?.buildId, this.clock.now());
    this.aliases.set(alias, record);
    return { ...record };
  }

  async resolve(alias: string): Promise<string | undefined> {
    checkAliasName(alias);
    await Promise.resolve();
    return this.aliases.get(alias)?.buildId;
  }

  async list(): Promise<AliasRecord[]> {
    return [...this.aliases.values()].sort((a, b) => a.alias.localeCompare(b.alias)).map((r) => ({ ...r }));
  }
}

type Make = () => Promise<{ registry: ModelRegistry; ledger: BuildLedger; cleanup?: () => Promise<void> }>;

const newId = () => `b-${randomBytes(8).toString("hex")}`;
/** Aliases unique per test, so a shared table (DynamoDB) needs no cleanup between tests. */
const newAlias = (base: string) => `${base}-${randomBytes(4).toString("hex")}`;

/** A build record walked through the ledger's real transitions to `status` (a new b- id, or `id`: e.g. a partitioned run's). */
export async function buildWithStatus(ledger: BuildLedger, status: "PENDING" | "TRAINING" | "AGGREGATING" | "COMPLETED" | "FAILED", id?: string): Promise<string> {
  const buildId = id ?? newId();
  await ledger.create(newBuildRecord({ buildId, total: 1, tolerated: 0, now: Date.now() }));
  if (status === "PENDING") return buildId;
  await ledger.startTraining(buildId);
  if (status === "TRAINING") return buildId;
  if (status === "FAILED") {
    await ledger.fail(buildId, "test failure");
    return buildId;
  }
  await ledger.landGrove(buildId, 0, groveStats(0));
  await ledger.claimAggregation(buildId);
  if (status === "AGGREGATING") return buildId;
  const partitioned = buildId.startsWith("p-");
  await ledger.complete(buildId, {
    modelKey: partitioned ? `partitions/${buildId}/model.json` : `builds/${buildId}/model.canopy`,
    reportKey: partitioned ? `partitions/${buildId}/report.json` : `builds/${buildId}/report.json`,
    metrics: { accuracy: 0.9 },
  });
  return buildId;
}

/**
 * The behaviour every ModelRegistry must have: `describeRegistryContract("MemoryRegistry", async () => {
 * const ledger = new MemoryLedger(); return { ledger, registry: new MemoryRegistry(ledger) }; })`.
 */
export function describeRegistryContract(name: string, make: Make): void {
  async function withRegistry(fn: (registry: ModelRegistry, ledger: BuildLedger) => Promise<void>): Promise<void> {
    const { registry, ledger, cleanup } = await make();
    try {
      await fn(registry, ledger);
    } finally {
      await cleanup?.();
    }
  }

  describe(`${name} (ModelRegistry contract)`, () => {
    it("promotes a COMPLETED build; resolve returns it; re-promoting keeps the previous build", () =>
      withRegistry(async (registry, ledger) => {
        const alias = newAlias("prod");
        const first = await buildWithStatus(ledger, "COMPLETED");
        const second = await buildWithStatus(ledger, "COMPLETED");
        expect(await registry.resolve(alias)).toBeUndefined();
        const before = Date.now();
        const record = await registry.promote(first, alias);
        expect(record).toMatchObject({ alias, buildId: first });
        expect(record.previous).toBeUndefined();
        expect(record.promotedAt).toBeGreaterThanOrEqual(before - 60_000);
        expect(await registry.resolve(alias)).toBe(first);
        const again = await registry.promote(second, alias);
        expect(again).toMatchObject({ alias, buildId: second, previous: first });
        expect(await registry.resolve(alias)).toBe(second);
      }));

    it("refuses builds that are not COMPLETED, naming the status, and leaves the alias as it was", () =>
      withRegistry(async (registry, ledger) => {
        const alias = newAlias("prod");
        const good = await buildWithStatus(ledger, "COMPLETED");
        await registry.promote(good, alias);
        for (const status of ["PENDING", "TRAINING", "AGGREGATING", "FAILED"] as const) {
          const id = await buildWithStatus(ledger, status);
          const err = await registry.promote(id, alias).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(RegistryError);
          expect((err as RegistryError).code).toBe("not-completed");
          expect((err as RegistryError).message).toBe(`build ${id} is ${status}; only a COMPLETED build can be promoted`);
        }
        expect(await registry.resolve(alias)).toBe(good);
      }));

    it("refuses unknown builds, malformed build ids and invalid alias names", () =>
      withRegistry(async (registry, ledger) => {
        const missing = newId();
        await expect(registry.promote(missing, newAlias("prod"))).rejects.toMatchObject({ code: "not-found", message: `build ${missing} not found` });
        await expect(registry.promote("b-nothex", newAlias("prod"))).rejects.toMatchObject({ code: "invalid" });
        const good = await buildWithStatus(ledger, "COMPLETED");
        for (const bad of ["", "-lead", "has space", "a/b", "../up", "x".repeat(64), "alias#x"]) {
          await expect(registry.promote(good, bad)).rejects.toMatchObject({ code: "invalid" });
          await expect(registry.resolve(bad)).rejects.toBeInstanceOf(RegistryError);
        }
      }));

    it("promotes a COMPLETED partitioned run (p- id) like a build, and refuses one that is not finished or not there", () =>
      withRegistry(async (registry, ledger) => {
        const alias = newAlias("prod");
        const run = await buildWithStatus(ledger, "COMPLETED", `p-${randomBytes(8).toString("hex")}`);
        const build = await buildWithStatus(ledger, "COMPLETED");
        await registry.promote(build, alias);
        expect(await registry.promote(run, alias)).toMatchObject({ alias, buildId: run, previous: build });
        expect(await registry.resolve(alias)).toBe(run);
        const training = await buildWithStatus(ledger, "TRAINING", `p-${randomBytes(8).toString("hex")}`);
        await expect(registry.promote(training, alias)).rejects.toMatchObject({
          code: "not-completed",
          message: `partitioned run ${training} is TRAINING; only a COMPLETED partitioned run can be promoted`,
        });
        const missing = `p-${randomBytes(8).toString("hex")}`;
        await expect(registry.promote(missing, alias)).rejects.toMatchObject({ code: "not-found", message: `partitioned run ${missing} not found` });
        expect(await registry.resolve(alias)).toBe(run);
      }));

    it("lists aliases sorted by name, each pointing at its own build", () =>
      withRegistry(async (registry, ledger) => {
        const [a, b] = [await buildWithStatus(ledger, "COMPLETED"), await buildWithStatus(ledger, "COMPLETED")];
        const suffix = randomBytes(4).toString("hex");
        await registry.promote(a, `zeta-${suffix}`);
        await registry.promote(b, `alpha-${suffix}`);
        await registry.promote(a, `mid-${suffix}`);
        const mine = (await registry.list()).filter((r) => r.alias.endsWith(suffix));
        expect(mine.map((r) => [r.alias, r.buildId])).toEqual([
          [`alpha-${suffix}`, b],
          [`mid-${suffix}`, a],
          [`zeta-${suffix}`, a],
        ]);
        const all = (await registry.list()).map((r) => r.alias);
        expect(all).toEqual([...all].sort((x, y) => x.localeCompare(y)));
      }));
  });
}
