export {
  AggregationError,
  cutLine,
  errorLine,
  inShort,
  MAX_ERROR_LINE,
  InputError,
  InternalError,
  isRetryable,
  LedgerError,
  policyOf,
  RegistryError,
  SpecError,
  TaskError,
  TransientError,
  type ErrorPolicy,
} from "./errors.ts";
export {
  isPartitionRunId,
  parsePartitionedModel,
  partitionKey,
  partitionedModelSchema,
  PARTITIONED_MODEL_FORMAT,
  PARTITIONED_MODEL_VERSION,
  type PartitionedModel,
  type PartitionModelRef,
} from "./partitioned-model.ts";
export {
  checkPartitionModel,
  classOrder,
  encodeRows,
  PartitionedPredictor,
  partitionedInputColumns,
  recordRows,
  tableRows,
  UnknownPartitionError,
  unknownPartitionMessage,
  type NamedRows,
  type PartitionedPrediction,
  type PartitionedPredictOptions,
  type PartitionLoader,
  type PartitionRoute,
  type UnknownRow,
} from "./partitioned-predict.ts";
export { CONTENT_TYPES, isBuildId, isLedgerId, isStudyId, KEY_PATTERNS, keys, reportKeysOf, type KeyKind } from "./keys.ts";
export {
  AGGREGATION_TRIGGER_FILTER,
  boundedError,
  buildNotFound,
  checkNewRecord,
  groveEntry,
  isAggregationTrigger,
  ledgerRules,
  MAX_ERROR_CHARS,
  newBuildRecord,
  recordOf,
  summaryOf,
  TERMINAL_STATUSES,
  toleranceReason,
  type BuildRecord,
  type BuildResult,
  type BuildStatus,
  type BuildSummary,
  type Decision,
  type FailGroveResult,
  type GroveStats,
  type LandResult,
  type LedgerChange,
  type MemberOf,
  type MetricsSummary,
} from "./ledger.ts";
export { systemClock, type BlobStore, type BuildLedger, type CanopyNotification, type Clock, type Notifier, type TaskQueue } from "./ports.ts";
export {
  candidateSpec,
  defaultScoring,
  parseStudySpec,
  planStudy,
  scoreOf,
  SCORINGS,
  SEARCHABLE,
  showParams,
  STUDY_LIMITS,
  studyCandidates,
  studyIdFor,
  halvingRounds,
  roundIdFor,
  finalStageIdFor,
  finalSpec,
  memberSpec,
  memberScore,
  studyRounds,
  type HalvingRound,
  type ParamDistribution,
  type Params,
  type ParamValue,
  type Scoring,
  type StudyManifest,
  type StudyMember,
  type StudySpec,
} from "./study-spec.ts";
export {
  aggregateStudy,
  decodeStudyManifest,
  landMember,
  memberStats,
  rankCandidates,
  readStudyManifest,
  readStudyView,
  studyHead,
  topCandidates,
  resumeStudy,
  redriveFanIn,
  resumeMembers,
  settleMember,
  settleMembers,
  settleStudy,
  submitMissingMembers,
  submitStudy,
  type StudyAggregateOutcome,
  type StudyAggregatePorts,
  type StudyPorts,
  type StudyResumption,
  type StudyView,
  type StudySubmission,
} from "./study.ts";
export {
  DEFAULT_MIN_PARTITION_ROWS,
  PARTITION_IDENTIFIER,
  PARTITION_LIMITS,
  partitionMemberSpec,
  partitionRunIdFor,
  checkPartitionOptions,
  type PartitionFallback,
  type PartitionMember,
  type PartitionRunManifest,
  type PartitionRunOptions,
  type PartitionTuningPlan,
} from "./partition-plan.ts";
export {
  partitionsCompletedNotification,
  partitionsFailedNotification,
  weightedMetrics,
  type PartitionNotification,
  type PartitionOutcome,
  type PartitionReport,
} from "./partition-report.ts";
export {
  aggregatePartitionedRun,
  decodePartitionRun,
  planPartitionRun,
  readPartitionRun,
  readPartitionView,
  resumePartitionedRun,
  settlePartitionedRun,
  submitPartitionedRun,
  submitPartitionTuning,
  type PartitionAggregateOutcome,
  type PartitionAggregatePorts,
  type PartitionResumption,
  type PartitionSubmission,
  type PartitionView,
  type PreparedPartition,
  type PreparedPartitions,
} from "./partitioned-run.ts";
export {
  checkPartitionTuning,
  planPartitionTuning,
  sharedCandidate,
  type PartitionRanking,
  type PartitionTuningMode,
  type PartitionTuningReport,
} from "./partition-tuning.ts";
export {
  MAX_NOTIFIED_CANDIDATES,
  studyCompletedNotification,
  studyFailedNotification,
  type StudyCandidate,
  type StudyFinal,
  type StudyNotification,
  type StudyReport,
} from "./study-report.ts";
export { canonicalJson, groveCount, MAX_CV_SPLITS, MAX_TREES, parseBuildSpec, toFitParams, type BuildSpec, type ColumnOverrides, type CvFold } from "./spec.ts";
export { foldSplit, kFoldAssignment, stratifiedKFoldAssignment } from "./folds.ts";
export { csvTable, csvRows, type TableSource, type RowSink } from "./table-source.ts";
export { buildIdFor, buildSplit, planBuild, planGroves, splitRows, type BuildPlan, type GrovePlan, type PackSummary, type RowSplit } from "./plan.ts";
export { optionWarnings, QUANTITY_CLASSES, taskNote, type DataNote } from "./data-notes.ts";
export { checkRows, exportAgreement, packRowsMatrix, predictMlrfExport, type ExportAgreement } from "./export-check.ts";
export { decodeGroveTask, encodeGroveTask, GROVE_TASK_VERSION, groveTaskRef, type GroveTask, type GroveTaskRef } from "./task.ts";
export { PackCache, verifiedPack } from "./pack-cache.ts";
export {
  failGroveTask,
  ManifestCache,
  taskDisagreements,
  trainGrove,
  type GroveDelivery,
  type GroveResult,
  type TrainGrovePorts,
} from "./train-grove.ts";
export { sha256Hex } from "./digest.ts";
export { aggregate, type AggregateOutcome, type AggregatePorts } from "./aggregate.ts";
export {
  buildHandle,
  groveTasks,
  prepareBuildData,
  prepareDataset,
  readManifest,
  resumeBuild,
  submitBuild,
  startBuild,
  type PreparedDataset,
  type PrepareOptions,
  type ResumeOptions,
  type Resumption,
  type Submission,
  type SubmitPorts,
} from "./submit.ts";
export { decodeManifest, manifestTrees, type BuildManifest, type ManifestParent, type ManifestRefit } from "./manifest.ts";
export { extendBuild, planExtension, startExtension, type Extension, type ExtensionPlan, type ExtendOptions } from "./extend.ts";
export { refitBuild, planRefit, startRefit, refitSpec, readRefitLink, type RefitPlan, type RefitLink } from "./refit.ts";
export { copyGroves } from "./copy-groves.ts";
export { STRAGGLER_RULE, stragglers, type BuildReport, type GroveReport, type StageTimings } from "./report.ts";
export { completedNotification, failedNotification, MAX_NOTIFIED_FAILURES, summarizeMetrics, type BuildNotification } from "./notification.ts";
export {
  billedGbSeconds,
  buildCost,
  DEFAULT_PRICES,
  groveCost,
  pricesFromEnv,
  requestCounts,
  type BuildCost,
  type CostOptions,
  type GroveCost,
  type Prices,
  type RequestCounts,
} from "./cost.ts";
export {
  AWS_ASSUMPTIONS,
  cpuSlowdown,
  estimateFanout,
  FULL_VCPU_MB,
  groveSizeCandidates,
  HOURS_PER_MONTH,
  SQS_SEND_IN_FLIGHT,
  suggestGroveSize,
  type FanoutAssumptions,
  type FanoutEstimate,
  type FanoutInput,
  type GroveSizeSuggestion,
  type MappingScaling,
  type WorkProfile,
} from "./estimate.ts";
export { lastProgressAt, sweepBuilds, sweepDecision, type QueueState, type SweepAction, type SweepPolicy, type SweepPorts, type SweepResult } from "./sweep.ts";
export { sleep } from "./sleep.ts";
export { lastGroveError, recordGroveError } from "./grove-error.ts";
export {
  checkAliasName,
  checkPromotion,
  featureChange,
  modelFeatures,
  DEFAULT_ALIAS,
  isAliasName,
  listModels,
  registryRules,
  type AliasRecord,
  type ModelListing,
  type ModelRegistry,
} from "./registry.ts";
export type {
  BuildEnd,
  BuildEvent,
  BuildHandle,
  BuildRequest,
  BuildView,
  ExtendRequest,
  RefitRequest,
  FollowOptions,
  GroveProgress,
  PreparedSummary,
  ProgressEvent,
  Runtime,
  SettledGrove,
  Stage,
} from "./runtime.ts";
export { groveProgress, ProgressTracker, treesLanded } from "./progress.ts";
export { EventLog } from "./event-log.ts";
export { readBuildView, readReport, viewOf } from "./status.ts";
export { followChanges, pollBuild, type FollowLedgerOptions, type FollowPorts } from "./follow.ts";
export {
  curveTrees,
  evaluateByTrees,
  TreeEvaluator,
  MAX_CURVE_POINTS,
  MAX_PREDICTION_SAMPLE,
  type HeldOutEvaluation,
  type PredictionSample,
  type TreeCurve,
  type TreeCurvePoint,
} from "./curve.ts";
export { OobAggregation, OobCurve, encodeOobDecision, decodeOobDecision, MAX_OOB_CURVE_ROWS, NO_OOB_WARNING } from "./oob.ts";
export type { OobSummary, OobResult, OobDecision } from "./oob.ts";
