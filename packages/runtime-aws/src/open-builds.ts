import { QueryCommand, type AttributeValue, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { clients } from "./clients.ts";
import { OPEN_BUILDS_INDEX } from "./ledger-item.ts";

/**
 * The ids of the builds that are not COMPLETED or FAILED, oldest first, for the sweeper: a Query of the sparse
 * `open-builds` index (counters carry its key only until they finish), so it reads the open builds and nothing else,
 * however many finished builds and grove entries the table holds. The index is eventually consistent and keys-only:
 * the caller reads each build's counter itself.
 */
export async function listOpenBuilds(table: string, client: DynamoDBClient = clients.dynamodb()): Promise<string[]> {
  const out: string[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: table,
        IndexName: OPEN_BUILDS_INDEX.name,
        KeyConditionExpression: "#open = :open",
        ExpressionAttributeNames: { "#open": OPEN_BUILDS_INDEX.hashKey },
        ExpressionAttributeValues: { ":open": { S: OPEN_BUILDS_INDEX.value } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of page.Items ?? []) if (item.buildId?.S) out.push(item.buildId.S);
    start = page.LastEvaluatedKey;
  } while (start);
  return out;
}
