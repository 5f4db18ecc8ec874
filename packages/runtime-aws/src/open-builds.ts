import { ScanCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { BuildRecord } from "@canopy/core";
import { clients } from "./clients.ts";
import { isBuildItem, itemToRecord } from "./ledger-item.ts";

/**
 * Every build of the ledger table that is not COMPLETED or FAILED, for the stalled-build sweeper. A Scan
 * with a filter on `status`: it reads the whole table (read units are charged for every item scanned), which
 * is fine for a ledger of builds; a table with many finished builds would want a sparse index on open builds.
 */
export async function listOpenBuilds(table: string, client: DynamoDBClient = clients.dynamodb()): Promise<BuildRecord[]> {
  const out: BuildRecord[] = [];
  let start: Record<string, never> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: "#status IN (:pending, :training, :aggregating)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":pending": { S: "PENDING" }, ":training": { S: "TRAINING" }, ":aggregating": { S: "AGGREGATING" } },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) if (isBuildItem(item)) out.push(itemToRecord(item));
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return out;
}
