"""scikit-learn's common estimator checks over every public estimator."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn.ensemble import RandomForestRegressor

from skdistill import (CrossFitDistiller, KnowledgeDistiller, LaplaceTeacher, LatentBEStudent,
                       MLPStudent, RankingDistiller, SampledSoftmaxDistiller)
from skdistill._testing import fast_instance, labels_for
from skdistill.discovery import all_estimators

# Every estimator in its fast test configuration (skdistill._testing: small networks, few
# epochs; every default-constructed estimator is also valid), with the settings of CHECKED_WITH,
# then configurations that reach code the defaults do not.
CHECKED_WITH = {
    # diversifying input perturbations, which take the rest of its code along
    "EnsembleDistiller": dict(perturbation="tdiv-sdiv"),
}
VARIANTS = [
    # a student pruned by group lasso: a smaller network after every fit
    fast_instance(MLPStudent, group_lasso=3e-3, fine_tune_epochs=10),
    # a scikit-learn regressor as student
    fast_instance(CrossFitDistiller, student=RandomForestRegressor(n_estimators=5),
                  gamma_alpha=0.01),
    fast_instance(LaplaceTeacher, subset_of_weights="all", hessian_structure="diag",
                  link_approx="probit"),
    # Kronecker factors, accumulated from the network
    fast_instance(LaplaceTeacher, subset_of_weights="all", hessian_structure="kron"),
    # teacher calibration: KD's cross-fitted map, CrossFit's map on its out-of-fold
    # probabilities
    fast_instance(KnowledgeDistiller, teacher_calibration="temperature"),
    fast_instance(CrossFitDistiller, student=RandomForestRegressor(n_estimators=5),
                  teacher_calibration="isotonic"),
    # the isotonic map of the score, applied by the distiller; sampled pairs
    fast_instance(RankingDistiller, calibration="isotonic", n_pairs=64),
    # sampled negatives (fewer than the other classes), drawn from the teacher, distilled
    fast_instance(SampledSoftmaxDistiller, n_negatives=1, sampler="teacher", alpha=0.5),
]
ESTIMATORS = [fast_instance(cls, **CHECKED_WITH.get(name, {})) for name, cls in all_estimators()]
ESTIMATORS += VARIANTS


def test_every_estimator_is_checked():
    checked = {type(estimator) for estimator in ESTIMATORS}
    assert [name for name, cls in all_estimators() if cls not in checked] == []


# Weight 2 on a row is not the row repeated twice for minibatch training: the data size, and
# so the batches each epoch, differ. Zero weights are tested with an equal data size (the
# same batches) in test_engine.py instead.
MINIBATCH_WEIGHT_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "minibatch SGD: a duplicated row changes the batches, weight 2 does not",
    "check_sample_weight_equivalence_on_sparse_data":
        "minibatch SGD: a duplicated row changes the batches, weight 2 does not",
}


# torch's float32 CPU matmul can round a row's logits differently with the batch's size (by
# ~1e-6 here, with one thread), more than the check's 1e-7 relative tolerance: whether a network
# passes is luck of its weights. The merged LatentBE network with the check's seed fails at
# max_epochs=40 and passes at 20 (an XPASS): the check stays an expected failure.
FLOAT32_BATCH_ROUNDING = {
    "check_methods_subset_invariance":
        "float32 matmul rounds a row differently with the batch size (1e-6 in a logit)",
}


def expected_failed_checks(estimator):
    # RankingDistiller's decision_function is a log-odds, a scale on which that rounding of
    # its score shows (its probabilities stay within the tolerance)
    if type(estimator) in (LatentBEStudent, RankingDistiller):
        return {**MINIBATCH_WEIGHT_CHECKS, **FLOAT32_BATCH_ROUNDING}
    return MINIBATCH_WEIGHT_CHECKS


@pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.filterwarnings("ignore:GPEDDistiller.*student only:UserWarning")
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_predict_proba_rows_are_float64_and_sum_to_one(estimator):
    # scikit-learn's log_loss warns "y_prob values do not sum to one" beyond ~1e-8
    X, y = make_classification(n_samples=120, n_features=5, n_informative=3, n_classes=3,
                               random_state=0)
    X = StandardScaler().fit_transform(X)
    y = labels_for(estimator, y)
    proba = clone(estimator).fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba)
