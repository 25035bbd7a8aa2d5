"""scikit-learn's common estimator checks over every public estimator."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from skdistill import GPEDDistiller, SGLDTeacher
from skdistill import DeepEnsembleTeacher, EnsembleDistiller, LatentBEStudent
from skdistill import LaplaceTeacher, VITeacher
from skdistill.students import LatentBECNNStudent
from skdistill import CNNStudent, CrossFitDistiller, KnowledgeDistiller, MLPStudent

# Small, fast configurations; every default-constructed estimator is also valid.
FAST_MLP = dict(hidden_layer_sizes=(32,), max_epochs=20, lr=1e-2)
ESTIMATORS = [
    MLPStudent(**FAST_MLP),
    # a student pruned by group lasso (issue 10): a smaller network after every fit
    MLPStudent(**FAST_MLP, group_lasso=3e-3, fine_tune_epochs=10),
    CNNStudent(max_epochs=20, lr=1e-2, width_multiplier=0.5),
    KnowledgeDistiller(student=MLPStudent(**FAST_MLP)),
    CrossFitDistiller(RandomForestClassifier(n_estimators=10), MLPStudent(**FAST_MLP), n_folds=3),
    CrossFitDistiller(RandomForestClassifier(n_estimators=10), RandomForestRegressor(n_estimators=5),
                      n_folds=3, gamma_alpha=0.01),
    # GPED (issue 4): tiny chains; the step suits the standardised data of the checks. 250
    # student steps (half the advised 500, whose warning the checks ignore) learn the checks'
    # small problems; a fit costs about one second at 500 and the checks fit ~200 times.
    SGLDTeacher(hidden_layer_sizes=(16,), step_size=2e-3, prior_precision=1.0, n_iter=300,
                burn_in=100, thinning=20),
    GPEDDistiller(SGLDTeacher(hidden_layer_sizes=(16,), step_size=2e-3, prior_precision=1.0),
                  MLPStudent(hidden_layer_sizes=(16,), lr=2e-2), n_iter=350, burn_in=100,
                  thinning=1),
    # Ensemble distillation (issue 5): two members everywhere to keep ~50 fits cheap.
    LatentBEStudent(n_members=2, **FAST_MLP),
    LatentBECNNStudent(n_members=2, max_epochs=20, lr=1e-2, width_multiplier=0.5),
    DeepEnsembleTeacher(MLPStudent(**FAST_MLP), n_members=2),
    EnsembleDistiller(DeepEnsembleTeacher(MLPStudent(**FAST_MLP), n_members=2),
                      LatentBEStudent(n_members=2, **FAST_MLP), perturbation="tdiv-sdiv"),
    # Bayesian teachers (issue 11): few posterior draws.
    LaplaceTeacher(MLPStudent(**FAST_MLP), n_samples=10),
    LaplaceTeacher(MLPStudent(**FAST_MLP), subset_of_weights="all", hessian_structure="diag",
                   link_approx="probit"),
    VITeacher(hidden_layer_sizes=(16,), max_epochs=40, lr=1e-2, batch_size=32, n_samples=10),
    # Teacher calibration (issue 11): KD's cross-fitted map, CrossFit's map on its out-of-fold
    # probabilities.
    KnowledgeDistiller(RandomForestClassifier(n_estimators=10), MLPStudent(**FAST_MLP),
                       teacher_calibration="temperature", teacher_calibration_cv=3),
    CrossFitDistiller(RandomForestClassifier(n_estimators=10), RandomForestRegressor(n_estimators=5),
                      n_folds=3, teacher_calibration="isotonic"),
]


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
    if type(estimator) is LatentBEStudent:
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
    proba = clone(estimator).fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba)
