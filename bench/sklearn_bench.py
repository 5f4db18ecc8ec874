"""scikit-learn side of `npm run bench`.

  python sklearn_bench.py fit <case_dir> --trees 10 --seed 0 --predict-repeats 3
      reads the uint8 files that bench/data.ts wrote, fits RandomForestClassifier on ONE thread, prints JSON.
  python sklearn_bench.py peek-idx <images.gz> <labels.gz> --rows 3
      independent gzip + numpy idx loader, used by the tests to check the TS loader gives the same rows.
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import pickle
import sys
import time

import numpy as np


def load_case(case_dir):
    with open(os.path.join(case_dir, "meta.json")) as f:
        meta = json.load(f)
    nf = meta["nFeatures"]

    def u8(name):
        return np.fromfile(os.path.join(case_dir, name), dtype=np.uint8)

    x_train = u8("X_train.u8").reshape(meta["nTrain"], nf)
    y_train = u8("y_train.u8")
    x_test = u8("X_test.u8").reshape(meta["nTest"], nf)
    y_test = u8("y_test.u8")
    h = hashlib.sha256()
    for a in (x_train, y_train, x_test, y_test):
        h.update(np.ascontiguousarray(a).tobytes())
    return meta, x_train, y_train, x_test, y_test, h.hexdigest()


def node_count(model):
    return int(sum(est.tree_.node_count for est in model.estimators_))


def fit(args):
    import sklearn
    from sklearn.ensemble import RandomForestClassifier

    meta, x_train, y_train, x_test, y_test, fp = load_case(args.case_dir)
    # float32 is sklearn's native tree dtype: handing it float32 keeps the conversion out of its fit time,
    # which favours sklearn slightly (Canopy's timed work starts from float64 columns).
    x_train = x_train.astype(np.float32)
    x_test = x_test.astype(np.float32)
    model = RandomForestClassifier(
        n_estimators=args.trees,
        max_features="sqrt",
        bootstrap=True,
        random_state=args.seed,
        n_jobs=args.jobs,
        max_depth=args.max_depth,
    )
    t0 = time.perf_counter()
    model.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - t0

    best = float("inf")
    proba = None
    # At least --predict-repeats runs, and on until 0.5 s were spent (at most 1000): engine.ts's rule.
    spent = 0.0
    i = 0
    while i < max(1, args.predict_repeats) or (spent < 0.5 and i < 1000):
        t0 = time.perf_counter()
        proba = model.predict_proba(x_test)
        took = time.perf_counter() - t0
        best = min(best, took)
        spent += took
        i += 1
    pred = model.classes_[np.argmax(proba, axis=1)]
    accuracy = float(np.mean(pred == y_test))

    latency = None
    if args.latency_rows > 0:
        # One predict_proba call per test row, as Canopy's in-process latency; the first 10% are warm-up.
        warm = -(-args.latency_rows // 10)
        times = []
        for i in range(warm + args.latency_rows):
            r = i % len(x_test)
            row = x_test[r : r + 1]
            t0 = time.perf_counter()
            model.predict_proba(row)
            t = (time.perf_counter() - t0) * 1000
            if i >= warm:
                times.append(t)
        times.sort()
        rank = lambda q: times[min(len(times) - 1, max(0, math.ceil(q * len(times)) - 1))]
        latency = {"p50Ms": rank(0.5), "p99Ms": rank(0.99), "rows": args.latency_rows}

    out = {
        "engine": "sklearn",
        "version": sklearn.__version__,
        "fingerprint": fp,
        "nTrain": int(meta["nTrain"]),
        "nTest": int(meta["nTest"]),
        "trees": args.trees,
        "fitSeconds": fit_seconds,
        "predictSeconds": best,
        "predictRowsPerSec": meta["nTest"] / best,
        "accuracy": accuracy,
        "modelBytes": len(pickle.dumps(model)),
        "nodeCount": node_count(model),
    }
    if latency is not None:
        out["latency"] = latency
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise SystemExit(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def peek_idx(args):
    images = read_idx(args.images)
    labels = read_idx(args.labels)
    rows = images.reshape(images.shape[0], -1)[: args.rows]
    json.dump({"dims": list(images.shape), "rows": rows.tolist(), "labels": labels[: args.rows].tolist()}, sys.stdout)
    sys.stdout.write("\n")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("case_dir")
    f.add_argument("--trees", type=int, default=10)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--predict-repeats", type=int, default=3)
    f.add_argument("--jobs", type=int, default=1)
    f.add_argument("--max-depth", type=int, default=None)
    f.add_argument("--latency-rows", type=int, default=0)
    k = sub.add_parser("peek-idx")
    k.add_argument("images")
    k.add_argument("labels")
    k.add_argument("--rows", type=int, default=3)
    args = p.parse_args()
    fit(args) if args.cmd == "fit" else peek_idx(args)


if __name__ == "__main__":
    main()
