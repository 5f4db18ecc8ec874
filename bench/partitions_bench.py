"""scikit-learn side of the bench's partitions section: one forest per group, the way it is written by hand.

  python partitions_bench.py <case_dir> --trees 100 --min-leaf 50 --jobs 2 --seed 0

reads what bench/partitions.ts wrote (meta.json; X.f64 rows x features row-major, NaN missing; y.f64; group.u32, the
partition of each row; test.u8, 1 for the rows each partition holds out) and loops over the groups: for each, a
RandomForestRegressor(n_estimators, min_samples_leaf, n_jobs, random_state) fit on its training rows and scored
(R^2) on its held-out rows. The grouping is numpy's (a stable sort by group, split at the boundaries): what
`df.groupby(col)` gives, without pandas. Prints JSON: the loop's wall time (grouping, fits and scores), the fits'
share, each group's R^2 and held-out rows, and the process's peak RSS.
"""

import argparse
import json
import os
import resource
import time

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestRegressor


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case_dir")
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--min-leaf", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    with open(os.path.join(a.case_dir, "meta.json")) as f:
        meta = json.load(f)
    n, nf = meta["nRows"], meta["nFeatures"]
    X = np.fromfile(os.path.join(a.case_dir, "X.f64"), dtype=np.float64).reshape(n, nf)
    y = np.fromfile(os.path.join(a.case_dir, "y.f64"), dtype=np.float64)
    group = np.fromfile(os.path.join(a.case_dir, "group.u32"), dtype=np.uint32)
    test = np.fromfile(os.path.join(a.case_dir, "test.u8"), dtype=np.uint8).astype(bool)

    t0 = time.perf_counter()
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    r2, rows = [], []
    fit_seconds = 0.0
    for members in np.split(order, bounds):
        held = test[members]
        train, hold = members[~held], members[held]
        model = RandomForestRegressor(n_estimators=a.trees, min_samples_leaf=a.min_leaf, n_jobs=a.jobs, random_state=a.seed)
        f0 = time.perf_counter()
        model.fit(X[train], y[train])
        fit_seconds += time.perf_counter() - f0
        r2.append(float(model.score(X[hold], y[hold])))
        rows.append(int(hold.size))
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "seconds": seconds,
        "fitSeconds": fit_seconds,
        "groups": len(r2),
        "r2": r2,
        "rows": rows,
        "maxRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "version": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
