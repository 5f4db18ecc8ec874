import { describeLedgerContract } from "@canopy/core/testing";
import { DynamoLedger } from "@canopy/runtime-aws";
import { useAwsEmulator } from "./harness.ts";

const aws = useAwsEmulator();

// Concurrency 2: moto loses conditional updates on one key under more parallel clients (real DynamoDB does not).
describeLedgerContract(
  "DynamoLedger on moto",
  async () => {
    const ledger = new DynamoLedger(aws.current.resources.table, undefined, { pollIntervalMs: 50 });
    return { ledger, cleanup: () => ledger.close() };
  },
  { concurrency: 2 },
);
