"""Scaling out: every parallel path runs on a real dask cluster and gives the serial results.

One ``LocalCluster`` (2 worker processes, 1 thread each) serves the module. Each test fits
once serially (``n_jobs=1``) and once with ``n_jobs=2`` under
``joblib.parallel_backend("dask")``, asks for identical probabilities, and reads the cluster's
task stream to check the work ran on its workers (a path that bypassed the active backend,
e.g. a hard-wired ``backend="loky"``, leaves the stream empty).
"""
import threading
import warnings

import joblib
import numpy as np
import pytest
from joblib._parallel_backends import ThreadingBackend
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV

from conftest import skip_or_fail
from skdistill import CrossFitDistiller, DeepEnsembleTeacher, KnowledgeDistiller, MLPStudent
from skdistill._random import seeded


def _distributed():
    """``distributed``, or skip (fail under ``CI=true``) when it is not installed."""
    try:
        import distributed
    except ImportError:
        skip_or_fail("dask.distributed is not installed (pip install 'skdistill[dask]')")
    return distributed


@pytest.fixture(scope="module")
def client():
    distributed = _distributed()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def data():
    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return X[::2], y[::2]  # 75 rows


def mlp(**kwargs):
    return MLPStudent(hidden_layer_sizes=(8,), max_epochs=5, lr=1e-2, **kwargs)


def on_the_cluster(client, fit):
    """Run ``fit()`` under the dask backend; return its result and the tasks' worker and key."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        result = fit()
    return result, [(task["worker"], str(task["key"])) for task in stream.data]


def assert_ran_on_workers(client, tasks, function):
    workers = set(client.scheduler_info()["workers"])
    assert tasks, "no task reached the cluster: the dask backend was bypassed"
    assert {worker for worker, _ in tasks} <= workers
    assert any(function in key for _, key in tasks), [key for _, key in tasks]


def test_grid_search_over_a_distiller_on_dask_matches_serial(client, data):
    X, y = data

    def search(n_jobs):
        model = KnowledgeDistiller(LogisticRegression(max_iter=200), mlp(), random_state=0)
        grid = {"student__hidden_layer_sizes": [(4,), (8,)]}
        return GridSearchCV(model, grid, cv=2, n_jobs=n_jobs).fit(X, y)

    serial = search(1)
    parallel, tasks = on_the_cluster(client, lambda: search(2))
    assert_ran_on_workers(client, tasks, "_fit_and_score")
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])
    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_array_equal(parallel.predict_proba(X), serial.predict_proba(X))


def test_crossfit_fold_teachers_on_dask_match_serial(client, data):
    X, y = data

    def crossfit(n_jobs):
        return CrossFitDistiller(mlp(), mlp(), n_folds=2, gamma_alpha=0.1, n_jobs=n_jobs,
                                 random_state=0).fit(X, y)

    serial = crossfit(1)
    parallel, tasks = on_the_cluster(client, lambda: crossfit(2))
    assert_ran_on_workers(client, tasks, "_fit_refusing")
    np.testing.assert_array_equal(parallel.oof_proba_, serial.oof_proba_)
    np.testing.assert_array_equal(parallel.teacher_.predict_proba(X),
                                  serial.teacher_.predict_proba(X))
    np.testing.assert_array_equal(parallel.predict_proba(X), serial.predict_proba(X))


def test_deep_ensemble_members_on_dask_match_serial(client, data):
    X, y = data

    def ensemble(n_jobs):
        return DeepEnsembleTeacher(mlp(), n_members=3, n_jobs=n_jobs, random_state=0).fit(X, y)

    serial = ensemble(1)
    parallel, tasks = on_the_cluster(client, lambda: ensemble(2))
    assert_ran_on_workers(client, tasks, "fit_with_weights")
    np.testing.assert_array_equal(parallel.sample_proba(X), serial.sample_proba(X))
    # the members' networks came back from the workers as the members' own
    assert all(m is member.module_ for m, member in zip(parallel.modules_, parallel.members_))


def test_a_worker_fit_gets_its_share_of_torch_threads(client):
    def probe():
        import torch

        from skdistill import engine

        return engine._dask_worker_threads(), torch.get_num_threads(), engine.worker_threads()

    # one task at a time, and dask's nanny starts workers with OMP_NUM_THREADS=1: one thread
    assert client.submit(probe, pure=False).result() == (1, 1, 1)


class _ListOnlyBackend(ThreadingBackend):
    """A backend that cannot hand results over as a generator, as multiprocessing and Ray's
    (it runs the calls one after the other, in this thread: see the test below)."""

    supports_return_generator = False

    def effective_n_jobs(self, n_jobs):
        return 1


def test_deep_ensemble_fits_on_a_backend_without_generators(data):
    X, y = data
    serial = DeepEnsembleTeacher(mlp(), n_members=2, random_state=0).fit(X, y)
    joblib.register_parallel_backend("skdistill-list-only", _ListOnlyBackend)
    with joblib.parallel_config(backend="skdistill-list-only"):
        parallel = DeepEnsembleTeacher(mlp(), n_members=2, n_jobs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(parallel.sample_proba(X), serial.sample_proba(X))


def test_fits_at_once_in_threads_of_one_process_are_flagged():
    # torch's generator is per process: two seeded fits at once in two threads share it
    inside, leave = threading.Event(), threading.Event()

    def other_fit():
        with seeded(1):
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_fit)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.warns(UserWarning, match="MLPStudent: another fit runs in a thread"):
            with seeded(2, owner=MLPStudent()):
                pass
    finally:
        leave.set()
        thread.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with seeded(2, owner=MLPStudent()):  # alone again: no warning
            pass
