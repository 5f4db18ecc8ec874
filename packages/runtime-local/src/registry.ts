import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  checkAliasName,
  isAliasName,
  registryRules,
  systemClock,
  type AliasRecord,
  type BuildLedger,
  type Clock,
  type ModelRegistry,
} from "@canopy/core";
import { isNotFound, jsonFileStems, writeFileAtomic } from "./atomic.ts";
import { DiskLedger } from "./disk-ledger.ts";
import { LocalStoreError } from "./errors.ts";

/**
 * Model aliases as one JSON file each, `<root>/aliases/<alias>.json`, next to the ledger they check builds
 * against. Written atomically, so a `canopy serve` reading the directory sees the old alias or the new one.
 * Promotions of one alias are serialised in this process; across processes the last writer wins.
 */
export class DiskModelRegistry implements ModelRegistry {
  readonly dir: string;
  private readonly ledger: Pick<BuildLedger, "get">;
  private readonly clock: Clock;
  private readonly fsync: boolean;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(root: string, options: { ledger?: Pick<BuildLedger, "get">; clock?: Clock; fsync?: boolean } = {}) {
    this.dir = join(resolve(root), "aliases");
    this.ledger = options.ledger ?? new DiskLedger(root);
    this.clock = options.clock ?? systemClock;
    this.fsync = options.fsync ?? true;
  }

  async promote(buildId: string, alias: string): Promise<AliasRecord> {
    checkAliasName(alias);
    const run = (this.locks.get(alias) ?? Promise.resolve()).then(async () => {
      const build = await this.ledger.get(buildId);
      const previous = (await this.read(alias))?.buildId;
      const record = registryRules.promote(build, buildId, alias, previous, this.clock.now());
      await writeFileAtomic(this.file(alias), `${JSON.stringify(record, null, 2)}\n`, { fsync: this.fsync });
      return record;
    });
    const tail = run.catch(() => undefined);
    this.locks.set(alias, tail);
    void tail.then(() => {
      if (this.locks.get(alias) === tail) this.locks.delete(alias);
    });
    return run;
  }

  async resolve(alias: string): Promise<string | undefined> {
    checkAliasName(alias);
    return (await this.read(alias))?.buildId;
  }

  async list(): Promise<AliasRecord[]> {
    const aliases = (await jsonFileStems(this.dir)).filter(isAliasName);
    const records = await Promise.all(aliases.map((a) => this.read(a)));
    return records.filter((r): r is AliasRecord => r !== undefined).sort((a, b) => a.alias.localeCompare(b.alias));
  }

  private file(alias: string): string {
    return join(this.dir, `${alias}.json`);
  }

  private async read(alias: string): Promise<AliasRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(alias), "utf8");
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    let record: AliasRecord;
    try {
      record = JSON.parse(text) as AliasRecord;
    } catch {
      throw new LocalStoreError(`alias file ${this.file(alias)} is not valid JSON`);
    }
    if (record?.alias !== alias || typeof record.buildId !== "string") throw new LocalStoreError(`alias file ${this.file(alias)} is not an alias record`);
    return record;
  }
}
