export { canopyEventSources, startEmulator, type CanopyEventSourceOptions, type CanopyHandlers, type EmulatorOptions, type RunningEmulator } from "./emulator.ts";
export { dropEmulatorArtifacts, dynamodbRecord, lambdaContext, queueArnFromUrl, sqsRecord } from "./events.ts";
export { checkFilterPattern, matchesFilterPattern, passesFilters, type FilterPattern } from "./filter.ts";
export { Slots, type InvocationInfo, type LambdaHandler } from "./invoker.ts";
export type { SqsHandler, SqsMapping, SqsMappingStats } from "./sqs-mapping.ts";
export type { StreamHandler, StreamMapping, StreamMappingStats } from "./stream-mapping.ts";
