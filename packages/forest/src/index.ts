export type { Task, Target, Dataset, ForestOptions, Tree } from "./types.ts";
export * from "./errors.ts";
export { treeSeed, Rng, shuffledIndices } from "./rng.ts";
export {
  buildPack,
  encodePack,
  decodePack,
  computeEdges,
  binOf,
  rowMajorBins,
  packRowCopy,
  rowMajorWideBins,
  missingCells,
  MISSING_BIN,
  MISSING_WIDE_BIN,
  MAX_BINS,
  MAX_WIDE_BINS,
  PACK_VERSION,
} from "./pack.ts";
export type { DatasetPack, PackOptions, PackFeature, PackRowCopy } from "./pack.ts";
export { resolveParams, featuresPerSplit } from "./options.ts";
export type { FitParams, ResolvedParams } from "./options.ts";
export { fitForest, allRows } from "./fit.ts";
export type { FitOptions } from "./fit.ts";
export { crc32Combine, Forest, FOREST_FORMAT, FOREST_VERSION, ForestMerger, ImportanceSum } from "./forest.ts";
export type { Matrix, ForestJSON, TreeJSON } from "./forest.ts";
export { parseCsv } from "./csv.ts";
export { parseCell, INVALID, isMissingCell, canonicalNumber, printable, quoted, MISSING_SPELLINGS } from "./cells.ts";
export { readCsvRecords, readCsvStream, CsvSyntaxError, binaryKind, notCsvMessage, CSV_PARSE_OPTIONS } from "./csv-text.ts";
export {
  RowEncoder,
  schemaFeatures,
  numericSchema,
  dateOf,
  categoryOf,
  DATE_FORMATS,
  OTHER_CATEGORY,
} from "./schema.ts";
export type { TableSchema, SchemaColumn, ColumnKind, DatePart, ExcludedColumn, FeatureInfo, FeatureKind, CellValue, Where } from "./schema.ts";
export { TableBuilder, SAMPLE_ROWS, MAX_CATEGORY_CODES } from "./table.ts";
export type { TableOptions, TableResult } from "./table.ts";
export type { ParseCsvOptions } from "./csv.ts";
export { classificationMetrics, regressionMetrics } from "./metrics.ts";
export type { ClassificationMetrics, RegressionMetrics, Metrics } from "./metrics.ts";
export { evaluate } from "./evaluate.ts";
export { PackRowSums } from "./predictor.ts";
export { OobSums, outOfBagRows, oobScore, requireBootstrap, OOB_FRACTION_BITS } from "./oob.ts";
export { exportMlrf, hardVote } from "./mlrf.ts";
