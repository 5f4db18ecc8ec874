"""scikit-learn and LightGBM side of the bench's categorical section.

  python categorical_bench.py <case_dir> --engine sklearn|lightgbm --trees 100 --jobs 1

reads what bench/categorical.ts wrote (meta.json; X.f64: rows x features, row-major, NaN missing, categorical
features as Canopy's integer codes; y.f64; train-<k>.u32 / test-<k>.u32 per split), fits one engine per split and
prints JSON: the metric on each split's test rows (accuracy or R^2), fit seconds, and the process's peak RSS.

- sklearn: RandomForestClassifier / RandomForestRegressor on the codes as ordinal numbers (what OrdinalEncoder
  gives, categories in Canopy's order: most frequent first), missing values as NaN (supported natively).
- lightgbm: LGBMClassifier / LGBMRegressor(boosting_type="rf") with the categorical features declared (native
  categorical splits), bagging_fraction 0.632 (the share of distinct rows in a bootstrap), bagging_freq 1,
  feature_fraction as Canopy's max_features default (sqrt for classification, all for regression), trees grown
  large (num_leaves up to 4095: training rows / min_child_samples, min_child_samples as --min-leaf; the
  histogram cache capped at 512 MB), as close to unpruned forest trees as LightGBM's leaf-wise growth allows.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def load(case_dir):
    with open(os.path.join(case_dir, "meta.json")) as f:
        meta = json.load(f)
    n, nf = meta["nRows"], meta["nFeatures"]
    X = np.fromfile(os.path.join(case_dir, "X.f64"), dtype=np.float64).reshape(n, nf)
    y = np.fromfile(os.path.join(case_dir, "y.f64"), dtype=np.float64)
    splits = []
    for k in range(meta["splits"]):
        train = np.fromfile(os.path.join(case_dir, f"train-{k}.u32"), dtype=np.uint32).astype(np.int64)
        test = np.fromfile(os.path.join(case_dir, f"test-{k}.u32"), dtype=np.uint32).astype(np.int64)
        splits.append((train, test))
    return meta, X, y, splits


def model_for(engine, meta, args, seed, n_train):
    classification = meta["task"] == "classification"
    if engine == "sklearn":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if classification else RandomForestRegressor
        return cls(n_estimators=args.trees, random_state=seed, n_jobs=args.jobs, min_samples_leaf=args.min_leaf)
    import lightgbm as lgb

    nf = meta["nFeatures"]
    params = dict(
        boosting_type="rf",
        n_estimators=args.trees,
        bagging_fraction=0.632,
        bagging_freq=1,
        feature_fraction=max(1, int(np.sqrt(nf))) / nf if classification else 1.0,
        # Large trees, as a random forest's, within reason: leaf-wise growth slows with every leaf (a tree of
        # 131072 leaves took minutes on 37k rows), and LightGBM keeps a histogram per leaf (capped here).
        num_leaves=int(min(4095, max(31, n_train // max(1, args.min_leaf)))),
        histogram_pool_size=512,
        max_depth=-1,
        min_child_samples=args.min_leaf,
        min_child_weight=1e-3,
        random_state=seed,
        n_jobs=args.jobs,
        verbose=-1,
    )
    return lgb.LGBMClassifier(**params) if classification else lgb.LGBMRegressor(**params)


def fit(args):
    meta, X, y, splits = load(args.case_dir)
    classification = meta["task"] == "classification"
    if classification:
        y = y.astype(np.int64)
    results = []
    for k, (train, test) in enumerate(splits):
        model = model_for(args.engine, meta, args, k, len(train))
        extra = {}
        if args.engine == "lightgbm" and meta["categorical"]:
            extra["categorical_feature"] = meta["categorical"]
        t0 = time.perf_counter()
        model.fit(X[train], y[train], **extra)
        seconds = time.perf_counter() - t0
        pred = model.predict(X[test])
        if classification:
            metric = float(np.mean(pred == y[test]))
        else:
            resid = y[test] - pred
            metric = float(1 - np.sum(resid**2) / np.sum((y[test] - np.mean(y[test])) ** 2))
        results.append({"split": k, "metric": metric, "fitSeconds": seconds})
        del model
    import sklearn

    version = sklearn.__version__
    if args.engine == "lightgbm":
        import lightgbm

        version = lightgbm.__version__
    # ru_maxrss is in KiB on Linux.
    out = {"engine": args.engine, "version": version, "results": results, "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one engine on a case folder of bench/categorical.ts")
    parser.add_argument("case_dir")
    parser.add_argument("--engine", choices=["sklearn", "lightgbm"], required=True)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--min-leaf", type=int, default=1)
    fit(parser.parse_args())
