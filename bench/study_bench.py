"""scikit-learn side of the study section of `npm run bench`.

  python study_bench.py <case_dir> --trees 100 --cv 3 --jobs 2 --grid '{"max_depth": [null, 8], ...}'
      GridSearchCV(RandomForestClassifier(n_jobs=1), cv=StratifiedKFold(cv), n_jobs=jobs, refit=False) on the
      case's training rows (the uint8 files bench/data.ts wrote); prints the search's wall time, best_params_,
      best_score_ and the mean fold scores as JSON.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklearn_bench import load_case  # noqa: E402

from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case_dir")
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--cv", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", required=True)
    a = p.parse_args()
    _, x, y, _, _, digest = load_case(a.case_dir)
    grid = json.loads(a.grid)
    search = GridSearchCV(
        RandomForestClassifier(n_estimators=a.trees, random_state=a.seed, n_jobs=1),
        grid,
        cv=StratifiedKFold(n_splits=a.cv),
        n_jobs=a.jobs,
        refit=False,
        scoring="accuracy",
    )
    t0 = time.perf_counter()
    search.fit(x, y)
    seconds = time.perf_counter() - t0
    r = search.cv_results_
    print(json.dumps({
        "seconds": seconds,
        "best_params": search.best_params_,
        "best_score": float(search.best_score_),
        "params": list(r["params"]),
        "mean": r["mean_test_score"].tolist(),
        "fingerprint": digest,
    }))


if __name__ == "__main__":
    main()
