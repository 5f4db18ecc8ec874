export { MemoryBlobStore, MemoryLedger, MemoryNotifier, MemoryQueue } from "./memory.ts";
export { describeLedgerContract, groveStats, type LedgerContractOptions } from "./ledger-contract.ts";
export { buildWithStatus, describeRegistryContract, MemoryRegistry } from "./registry.ts";
export { describeRuntimeScenario, type RuntimeScenarioOptions } from "./runtime-scenario.ts";
export { partitionedFixture, partitionRows, storePartitioned, type PartitionedFixture, type PartitionedFixtureOptions } from "./partitioned.ts";
export { partitionedRunInMemory, type PartitionedRunInMemory } from "./partitioned-run.ts";
