"""Prediction from many threads at once gives the serial result, for every public estimator.

A web server calls ``predict_proba`` from its request threads: a prediction that swaps
parameters into a shared network, draws from a shared generator, flips train/eval modes or
enters torch's process-wide forward-AD levels gives other numbers, or fails, there.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import make_classification
from skorch import NeuralNet
from torch import nn

from skdistill import LaplaceTeacher, engine
from skdistill._testing import fast_instance, labels_for
from skdistill.discovery import all_estimators

THREADS = 8
REPEATS = 5
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "sample_proba",
           "ensemble_proba", "predict_uncertainty", "predict_expectation")

X, y = make_classification(n_samples=48, n_features=16, n_informative=6, n_classes=3,
                           random_state=0)
X = X.astype(np.float32)
# more rows than the fits' so that the calls of the threads overlap for longer
X_PREDICT = np.tile(X, (10, 1))


# Every estimator, fitted in a fraction of a second (skdistill._testing.fast_instance); dropout
# where a network has it: a prediction run in train mode (another thread's mode switch) would
# differ.
TINY = dict(hidden_layer_sizes=(8,), dropout=0.5, max_epochs=2, n_iter=60, burn_in=20,
            thinning=10, n_samples=4, random_state=0)
# Settings that give a class every prediction method: GPED's uncertainty needs its entropy head,
# EnsembleDistiller's a Dirichlet student (EnD2).
EVERY_METHOD = {"GPEDDistiller": dict(target=["predictive", "entropy"]),
                "EnsembleDistiller": dict(method="end2")}
CONFIGS = {name: (lambda cls=cls: fast_instance(cls, **TINY).set_params(
    **EVERY_METHOD.get(cls.__name__, {}))) for name, cls in all_estimators()}


def _laplace(subset, hessian, link):
    return fast_instance(LaplaceTeacher, **TINY).set_params(
        subset_of_weights=subset, hessian_structure=hessian, link_approx=link)


# Configurations whose predictions take other code paths: each Laplace posterior and
# predictive (the default is the last layer's full posterior, Monte Carlo).
VARIANTS = {
    "LaplaceTeacher-last-diag-probit": lambda: _laplace("last_layer", "diag", "probit"),
    "LaplaceTeacher-last-full-probit": lambda: _laplace("last_layer", "full", "probit"),
    "LaplaceTeacher-all-full-mc": lambda: _laplace("all", "full", "mc"),
    "LaplaceTeacher-all-diag-mc": lambda: _laplace("all", "diag", "mc"),
    "LaplaceTeacher-all-full-probit": lambda: _laplace("all", "full", "probit"),
    "LaplaceTeacher-all-diag-probit": lambda: _laplace("all", "diag", "probit"),
}
FACTORIES = {**CONFIGS, **VARIANTS}


def test_every_estimator_is_tested():
    assert sorted(CONFIGS) == [name for name, _ in all_estimators()]
    assert {type(make()) for make in FACTORIES.values()} == {cls for _, cls in all_estimators()}


def _fitted_networks(estimator):
    """The torch modules a fitted estimator predicts with (``module_``, ``modules_``, ...),
    and those of its fitted sub-estimators (``student_``, ``members_``, ...); not those of
    the skorch net that trained a student (its training loss and wrapper networks)."""
    for name, value in vars(estimator).items():
        if not name.endswith("_"):
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, nn.Module):
                yield f"{type(estimator).__name__}.{name}", item
            elif isinstance(item, BaseEstimator) and not isinstance(item, NeuralNet):
                yield from _fitted_networks(item)


# name -> the fitted networks in training mode right after the fit (later predictions, if
# they switched modes, could hide it)
IN_TRAINING_AFTER_FIT = {}


@lru_cache(maxsize=None)
def fitted(name):
    estimator = FACTORIES[name]()
    estimator.fit(X, labels_for(estimator, y))
    IN_TRAINING_AFTER_FIT[name] = sorted({where for where, module in _fitted_networks(estimator)
                                          if any(m.training for m in module.modules())})
    return estimator


def _as_array(result):
    if isinstance(result, dict):  # predict_uncertainty's Bunch
        return np.stack([result[k] for k in sorted(result)])
    return np.asarray(result)


def _at_once(calls):
    """Run ``calls`` (one per thread), released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(run, call) for call in calls]]


def _methods(estimator):
    return [m for m in METHODS if hasattr(estimator, m)]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_prediction_from_many_threads_is_the_serial_prediction(name):
    estimator = fitted(name)
    methods = _methods(estimator)
    assert methods
    for method in methods:
        def call(method=method):
            return _as_array(getattr(estimator, method)(X_PREDICT))

        serial = call()
        for _ in range(REPEATS):
            for result in _at_once([call] * THREADS):
                np.testing.assert_array_equal(result, serial, err_msg=f"{name}.{method}")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_different_predictions_at_once_are_the_serial_ones(name):
    # e.g. a probit predict_proba (Jacobians) beside a Monte Carlo sample_proba (draws)
    estimator = fitted(name)
    methods = _methods(estimator)
    serial = {m: _as_array(getattr(estimator, m)(X_PREDICT)) for m in methods}
    chosen = [methods[i % len(methods)] for i in range(THREADS)]
    for _ in range(REPEATS):
        results = _at_once([lambda m=m: _as_array(getattr(estimator, m)(X_PREDICT))
                            for m in chosen])
        for method, result in zip(chosen, results):
            np.testing.assert_array_equal(result, serial[method], err_msg=f"{name}.{method}")


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_fitted_networks_are_in_eval_mode(name):
    # prediction then never switches a shared network's mode (a thread switching it back to
    # training while another predicts would run dropout there)
    fitted(name)
    assert not IN_TRAINING_AFTER_FIT[name]


def test_two_laplace_teachers_predicting_at_once():
    # torch's forward-AD levels belong to the process, not to a teacher: the Jacobians of
    # one teacher and the Jacobian-vector products of another must not meet either
    first = fitted("LaplaceTeacher-all-full-probit")
    second = fitted("LaplaceTeacher-all-diag-mc")
    serial = [first.predict_proba(X_PREDICT), second.predict_proba(X_PREDICT)]
    half = THREADS // 2
    for _ in range(REPEATS):
        results = _at_once([lambda: first.predict_proba(X_PREDICT)] * half
                           + [lambda: second.predict_proba(X_PREDICT)] * half)
        for i, result in enumerate(results):
            np.testing.assert_array_equal(result, serial[i // half])


def test_thread_counts_from_fits_in_many_threads_come_back(monkeypatch):
    # fits on a dask worker with several threads cap torch's threads; however their entries
    # and exits interleave, each gets its share of the process's count, and the process
    # keeps that count, in old threads and in new ones (a new thread starts with the count
    # last set by any thread)
    real_set = torch.set_num_threads

    def slow_set(n):  # widen the window between a fit's bookkeeping and its setting
        threading.Event().wait(0.004)
        real_set(n)

    before = torch.get_num_threads()
    real_set(4)
    monkeypatch.setattr(engine, "_dask_worker_threads", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", slow_set)

    def fit(delay):
        # staggered so that a fit enters while the one before is leaving (each takes one
        # setting, 4 ms, to enter and one to leave): into the window after its bookkeeping
        threading.Event().wait(delay)
        with engine.limit_threads():
            return torch.get_num_threads()

    try:
        for _ in range(5):
            shares = _at_once([lambda i=i: fit(0.006 * i) for i in range(THREADS)])
            assert shares == [2] * THREADS
            assert _at_once([torch.get_num_threads])[0] == 4
        assert torch.get_num_threads() == 4
    finally:
        real_set(before)
