import { GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  checkAliasName,
  registryRules,
  systemClock,
  type AliasRecord,
  type BuildLedger,
  type BuildSummary,
  type Clock,
  type ModelRegistry,
} from "@canopy/core";
import { clients } from "./clients.ts";
import { DynamoLedger } from "./dynamo-ledger.ts";
import { isBuildItem, itemToSummary, type Item } from "./ledger-item.ts";

/**
 * Alias items live in the builds table under this key prefix (`buildId = "alias#production"`), so there is no
 * second table. Build ids start with `b-`, so the two never collide, and an alias item has no `status` or
 * `remaining`: the aggregator's stream filter and `changeFromStreamRecord` skip it, and it is not in the open-builds
 * index the sweeper reads.
 */
export const ALIAS_KEY_PREFIX = "alias#";

export function aliasKey(alias: string): string {
  return `${ALIAS_KEY_PREFIX}${checkAliasName(alias)}`;
}

function itemToAlias(item: Item): AliasRecord | undefined {
  const alias = item.alias?.S;
  const buildId = item.target?.S;
  const promotedAt = Number(item.promotedAt?.N);
  if (!alias || !buildId || !Number.isFinite(promotedAt) || item.buildId?.S !== `${ALIAS_KEY_PREFIX}${alias}`) return undefined;
  return { alias, buildId, promotedAt, ...(item.previous?.S ? { previous: item.previous.S } : {}) };
}

/**
 * Model aliases in the builds table. Promotion reads the build (strongly consistent) and applies core's
 * `registryRules`; a build never leaves COMPLETED, so the check cannot go stale before the PutItem. The
 * PutItem returns the old item, which gives `previous` without a second read. Resolution reads strongly
 * consistent too: a promotion is visible to the next resolve (the predict function caches it briefly).
 */
export class DynamoModelRegistry implements ModelRegistry {
  private readonly ledger: Pick<BuildLedger, "summary">;
  private readonly clock: Clock;

  constructor(
    readonly table: string,
    private readonly client: DynamoDBClient = clients.dynamodb(),
    options: { ledger?: Pick<BuildLedger, "summary">; clock?: Clock } = {},
  ) {
    this.ledger = options.ledger ?? new DynamoLedger(table, client);
    this.clock = options.clock ?? systemClock;
  }

  async promote(buildId: string, alias: string): Promise<AliasRecord> {
    checkAliasName(alias);
    const build = await this.ledger.summary(buildId);
    // Checked before writing; `previous` comes from the write itself.
    const record = registryRules.promote(build, buildId, alias, undefined, this.clock.now());
    const out = await this.client.send(
      new PutItemCommand({
        TableName: this.table,
        Item: {
          buildId: { S: aliasKey(alias) },
          alias: { S: alias },
          target: { S: record.buildId },
          promotedAt: { N: String(record.promotedAt) },
        },
        ReturnValues: "ALL_OLD",
      }),
    );
    const previous = out.Attributes ? itemToAlias(out.Attributes)?.buildId : undefined;
    return previous !== undefined ? { ...record, previous } : record;
  }

  async resolve(alias: string): Promise<string | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.table, Key: { buildId: { S: aliasKey(alias) } }, ConsistentRead: true }));
    return out.Item ? itemToAlias(out.Item)?.buildId : undefined;
  }

  async list(): Promise<AliasRecord[]> {
    const items = await scanAll(this.client, this.table, {
      FilterExpression: "begins_with(#buildId, :prefix)",
      ExpressionAttributeNames: { "#buildId": "buildId" },
      ExpressionAttributeValues: { ":prefix": { S: ALIAS_KEY_PREFIX } },
    });
    return items
      .map(itemToAlias)
      .filter((r): r is AliasRecord => r !== undefined)
      .sort((a, b) => a.alias.localeCompare(b.alias));
  }
}

/**
 * Every build's counter in the table (grove entries and alias items skipped), for `canopy models`. A Scan reads the
 * whole table (finished builds expire after the ledger's retention); it runs on demand from the CLI, never on a
 * request path.
 */
export async function listBuilds(table: string, client: DynamoDBClient = clients.dynamodb()): Promise<BuildSummary[]> {
  const items = await scanAll(client, table, {
    FilterExpression: "attribute_exists(#status) AND attribute_exists(#remaining)",
    ExpressionAttributeNames: { "#status": "status", "#remaining": "remaining" },
  });
  return items.filter(isBuildItem).map(itemToSummary);
}

async function scanAll(
  client: DynamoDBClient,
  table: string,
  filter: { FilterExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, AttributeValue> },
): Promise<Item[]> {
  const out: Item[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...filter, ...(start ? { ExclusiveStartKey: start } : {}) }));
    out.push(...((page.Items ?? []) as Item[]));
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}
