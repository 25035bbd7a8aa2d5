"""Scaling out on a dask cluster
==============================

The code that fits on one machine runs on a dask cluster unchanged: inside
``joblib.parallel_backend("dask")``, every ``n_jobs`` of skdistill (cross-fitting's fold
teachers, a deep ensemble's members) and of scikit-learn (``GridSearchCV``) sends its fits to
the cluster's workers. A ``LocalCluster`` of two worker processes stands in here for a remote
cluster (``Client("tcp://scheduler:8786")``, see :doc:`Scaling out </scaling_out>`). With
the same ``random_state``, the cluster's fits give exactly the numbers of the serial run.

Run: ``python examples/scale_out_dask.py``. It needs dask (``pip install "skdistill[dask]"``);
without it the script says so and stops. It reads no data file (scikit-learn's breast cancer
data).
"""
import re
import time
from collections import Counter

import joblib
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

from skdistill import CrossFitDistiller, KnowledgeDistiller, MLPStudent

try:
    from dask.distributed import Client, LocalCluster, get_task_stream
except ImportError:
    Client = None


def distiller(n_jobs):
    """Cross-fitted distillation: 4 fold teachers and the full-data teacher, in parallel."""
    return CrossFitDistiller(RandomForestClassifier(n_estimators=50, min_samples_leaf=3),
                             MLPStudent(hidden_layer_sizes=(16,), max_epochs=20, lr=3e-3),
                             n_folds=4, gamma_alpha=0.1, n_jobs=n_jobs, random_state=0)


def function_of(key):
    """The function a joblib task on dask ran, from its key ("batch_of_<f>_<n>_calls-...")."""
    match = re.search(r"batch_of_(.+?)_\d+_calls", str(key))
    return match.group(1) if match else str(key)


def main():
    if Client is None:
        print("dask.distributed is not installed: pip install 'skdistill[dask]' (or "
              "'dask[distributed]') to run this example; nothing was run.")
        return
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    print(f"breast cancer data: {len(X_train)} training rows, {len(X_test)} test rows")

    start = time.perf_counter()
    serial = distiller(n_jobs=1).fit(X_train, y_train)
    print(f"serial fit (n_jobs=1): {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    # The __main__ guard below matters: dask starts its workers as new Python processes.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"cluster of {len(client.scheduler_info()['workers'])} workers started in "
              f"{time.perf_counter() - start:.1f} s")
        with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            start = time.perf_counter()
            parallel = distiller(n_jobs=2).fit(X_train, y_train)
            print(f"same fit on the cluster (n_jobs=2): {time.perf_counter() - start:.1f} s")
            # scikit-learn's own n_jobs goes to the cluster the same way
            grid = GridSearchCV(KnowledgeDistiller(LogisticRegression(), MLPStudent(
                max_epochs=20, lr=3e-3), random_state=0),
                {"student__hidden_layer_sizes": [(8,), (16,)]}, cv=3, n_jobs=2)
            grid.fit(X_train, y_train)
        workers = Counter(task["worker"] for task in stream.data)
        functions = Counter(function_of(task["key"]) for task in stream.data)

    print(f"{sum(workers.values())} tasks ran on the cluster: "
          + ", ".join(f"{n} on {worker}" for worker, n in sorted(workers.items())))
    # Under the dask backend every joblib call goes to the cluster, whatever its n_jobs, the
    # random forests' own (one task per tree or few trees) included (page "Scaling out").
    for function, n in functions.most_common():
        print(f"  {n:4d} x {function}")
    difference = np.abs(parallel.predict_proba(X_test) - serial.predict_proba(X_test)).max()
    print(f"largest difference between the serial and the cluster's test probabilities: "
          f"{difference:g}")
    print(f"cross-fitted student's test accuracy: {parallel.score(X_test, y_test):.3f}; the grid "
          f"search on the cluster chose {grid.best_params_}")


if __name__ == "__main__":
    main()
