import type { FeatureInfo, TableSchema } from "./schema.ts";

export type Task = "classification" | "regression";

/** What the model predicts. Class codes index `classes` (0..K-1). */
export type Target =
  | { task: "classification"; classes: string[]; codes: Uint16Array }
  | { task: "regression"; values: Float64Array };

/**
 * A table ready for binning: one raw column per feature, NaN for a missing cell. A categorical feature's values
 * are its category codes. Without `features`, every feature is numeric.
 */
export interface Dataset {
  featureNames: string[];
  labelName: string;
  nRows: number;
  columns: Float64Array[];
  target: Target;
  /** Each feature's kind (and a categorical one's category names), from the schema. */
  features?: FeatureInfo[];
  /** How the input's columns became these features (applied again to rows to predict). */
  schema?: TableSchema;
  /** Per-row sample weights (scikit-learn's sample_weight): finite, >= 0. */
  weights?: Float64Array;
}

/** Options with scikit-learn's names and defaults (RandomForestClassifier / RandomForestRegressor). */
export interface ForestOptions {
  /** "gini" (default) or "entropy" for classification; "squared_error" for regression. */
  criterion?: "gini" | "entropy" | "squared_error";
  /** null (default): grow until leaves are pure or smaller than min_samples_split. */
  max_depth?: number | null;
  /** int >= 2, or a fraction in (0, 1) of the training rows (JS cannot tell 1 from 1.0). Default 2. */
  min_samples_split?: number;
  /** int >= 1, or a fraction in (0, 1) of the training rows. Default 1. */
  min_samples_leaf?: number;
  /**
   * Features drawn per split: "sqrt" (classification default), "log2", "all" or null (regression default),
   * an integer count >= 1, or a fraction in (0, 1). JS cannot tell 1 from 1.0, so 1 means one feature.
   */
  max_features?: "sqrt" | "log2" | "all" | number | null;
  /** Default true. */
  bootstrap?: boolean;
  /** Rows drawn per bootstrap: null (all), an integer count (1 means one row), or a fraction in (0, 1). */
  max_samples?: number | null;
  /** "balanced": weights inversely proportional to class frequencies in the training rows. */
  class_weight?: "balanced" | null;
  /** A split must decrease weighted impurity by at least this much. Default 0. */
  min_impurity_decrease?: number;
}

/** One decision tree as flat typed arrays, nodes in depth-first pre-order (left child of i is i + 1). */
export interface Tree {
  /** Position of this tree in its build (0..n_estimators-1); the tree's seed derives from it. */
  index: number;
  nodeCount: number;
  /** Split feature, or -1 for a leaf. */
  feature: Int32Array;
  /** Raw-value threshold: x <= threshold goes left. */
  threshold: Float64Array;
  /**
   * The same split in bin space: bin <= thresholdBin goes left. A Uint8Array when every value fits in 8 bits (as
   * every model before 16-bit bins), else a Uint16Array.
   */
  thresholdBin: Uint8Array | Uint16Array;
  /** Internal node: index of the right child. Leaf: slot in `values`. */
  right: Int32Array;
  /** 1 if missing values go left at this split. */
  missingLeft: Uint8Array;
  /** Weighted impurity decrease of the split (0 for leaves), for feature importances. */
  gain: Float32Array;
  /** Leaf values, `valueWidth` per leaf: class probabilities, or the regression mean. */
  values: Float32Array;
  /** The tree's splits of categorical features into two sets of categories; absent when it has none. */
  categorical?: CategorySets;
}

/**
 * Category sets of a tree's categorical splits (model format 4). A categorical split node i sends a row left iff
 * bit c of its set is 1, c being the row's category code (32 codes per word, code c in word c >> 5, bit c & 31).
 * Codes the set does not cover, and missing values, follow `missingLeft`; so do categories that were absent from
 * the node in training, whose bits are written as `missingLeft`.
 */
export interface CategorySets {
  /** Per node: the index k of its set, or -1 (a leaf or a numeric split). */
  set: Int32Array;
  /** Set k is words bits[bounds[k], bounds[k + 1]). */
  bounds: Uint32Array;
  bits: Uint32Array;
}
