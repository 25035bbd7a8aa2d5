"""Distilling on extra unlabelled rows: ``fit(X, y, X_unlabeled=...)`` of KD and CrossFit."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from skdistill import CrossFitDistiller, KnowledgeDistiller, MLPStudent
from skdistill.losses import DistillationLoss, corrected_targets, distillation_loss


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=260, n_features=5, n_informative=3, flip_y=0.1,
                               random_state=0)
    return X[:160], y[:160], X[160:]


class RuleTeacher(ClassifierMixin, BaseEstimator):
    """Class 1 for 0 < x_0 < 1.5, class 0 elsewhere, whatever it is fitted on."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = ((X[:, 0] > 0) & (X[:, 0] < 1.5)).astype(float)
        p = np.clip(p, 0.02, 0.98)
        return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def far_rows():
    """Labelled rows in [-1, 1] (label: x > 0), unlabelled rows in [2, 3] where the teacher,
    unlike an extrapolating student, says class 0."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 1))
    X_unlabeled = rng.uniform(2, 3, size=(200, 1))
    return X, (X[:, 0] > 0).astype(int), X_unlabeled


STUDENT = MLPStudent(hidden_layer_sizes=(16,), max_epochs=60, lr=1e-2, random_state=0)


@pytest.mark.parametrize("make", [
    lambda: CrossFitDistiller(RuleTeacher(), STUDENT, n_folds=3, random_state=0),
    lambda: KnowledgeDistiller(FrozenEstimator(RuleTeacher().fit([[0]], [0, 1])), STUDENT,
                               alpha=0.5, random_state=0),
], ids=["crossfit", "kd"])
def test_the_student_learns_the_teacher_on_unlabeled_rows(far_rows, make):
    X, y, X_unlabeled = far_rows
    probe = np.array([[2.5]])
    # Alone, the labelled rows teach "class 1 for large x"; the teacher says otherwise there.
    assert make().fit(X, y).predict(probe)[0] == 1
    model = make().fit(X, y, X_unlabeled=X_unlabeled)
    assert model.predict(probe)[0] == 0
    assert model.predict_proba(probe)[0, 0] > 0.8
    assert np.mean(model.predict(X) == y) > 0.95  # and still the labels where it has them


@pytest.mark.parametrize("calibration", [None, "temperature"])
@pytest.mark.parametrize("refit_teacher", [True, False])
def test_crossfit_targets_of_unlabeled_rows_are_the_unseen_teachers(binary, calibration,
                                                                    refit_teacher):
    X, y, X_unlabeled = binary
    model = CrossFitDistiller(LogisticRegression(), DecisionTreeRegressor(), n_folds=3,
                              gamma_alpha=0.05, teacher_calibration=calibration,
                              refit_teacher=refit_teacher, random_state=0)
    model.fit(X, y, X_unlabeled=X_unlabeled)
    teachers = [model.teacher_] if refit_teacher else model.fold_teachers_
    p = np.mean([t.predict_proba(X_unlabeled) for t in teachers], axis=0)
    oof = model.oof_proba_
    if calibration is not None:
        p = model.teacher_calibrator_.transform(p)
        oof = model.teacher_calibrator_.transform(oof)
    # A full-depth tree reproduces its training targets: no correction where there is no
    # label, the gamma-corrected out-of-fold probabilities where there is one.
    assert np.allclose(model.student_.predict(X_unlabeled), p[:, 1])
    labelled = corrected_targets(np.eye(2)[y], oof, 0.05)[:, 1]
    assert np.allclose(model.student_.predict(X), labelled)
    assert not np.allclose(labelled, oof[:, 1])  # the correction did move them


def test_crossfit_log_scale_targets_and_sparse_rows(binary):
    X, y, X_unlabeled = binary
    model = CrossFitDistiller(LogisticRegression(), DecisionTreeRegressor(), n_folds=3,
                              loss="sel", random_state=0)
    model.fit(sp.csr_matrix(X), y, sample_weight=np.full(len(y), 2.0),
              X_unlabeled=sp.csr_matrix(X_unlabeled))
    p = model.teacher_.predict_proba(sp.csr_matrix(X_unlabeled))[:, 1]
    assert np.allclose(model.student_.predict(X_unlabeled), np.log(np.maximum(p, 1 / 500)))


def test_kd_without_a_label_uses_the_teacher_term_alone():
    torch.manual_seed(0)
    z, q = torch.randn(4, 3), torch.softmax(torch.randn(4, 3), dim=1)
    labels = torch.tensor([2, -1, 0, -1])
    target = torch.column_stack([labels.float(), q])
    loss = DistillationLoss(temperature=2.0, alpha=0.3, reduction="none")(z, target)
    both = distillation_loss(z, labels.clamp_min(0), q, 2.0, 0.3, reduction="none")
    teacher = distillation_loss(z, labels, q, 2.0, 1.0, reduction="none")
    assert torch.allclose(loss, torch.where(labels < 0, teacher, both))
    assert not torch.allclose(both, teacher)
    # the function itself reads -1 as "no label"; the module only unpacks the target
    assert torch.equal(distillation_loss(z, labels, q, 2.0, 0.3, reduction="none"), loss)
    mean = DistillationLoss(temperature=2.0, alpha=0.3)(z, target)
    assert torch.isclose(mean, loss.mean())


@pytest.mark.parametrize("make", [
    lambda: CrossFitDistiller(LogisticRegression(), STUDENT, n_folds=3),
    lambda: KnowledgeDistiller(LogisticRegression(), STUDENT),
], ids=["crossfit", "kd"])
def test_bad_unlabeled_rows_name_the_distiller_and_parameter(binary, make):
    X, y, X_unlabeled = binary
    name = type(make()).__name__
    with pytest.raises(ValueError, match=rf"^{name}: parameter X_unlabeled is invalid"):
        make().fit(X, y, X_unlabeled=X_unlabeled[:, :3])
    bad = X_unlabeled.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"^{name}: parameter X_unlabeled is invalid"):
        make().fit(X, y, X_unlabeled=bad)


@pytest.mark.parametrize("make", [
    lambda student: CrossFitDistiller(LogisticRegression(), student, n_folds=3),
    lambda student: KnowledgeDistiller(LogisticRegression(), student),
], ids=["crossfit", "kd"])
def test_the_student_validation_split_counts_the_unlabeled_rows(binary, make):
    # the split is checked before any teacher is fitted, on every row the student learns from
    X, y, X_unlabeled = binary
    student = MLPStudent(hidden_layer_sizes=(4,), max_epochs=1, validation_fraction=0.999)
    with pytest.raises(ValueError, match=r"MLPStudent: parameter validation_fraction=0\.999 "
                                         r"is invalid.*of the 260 rows"):
        make(student).fit(X, y, X_unlabeled=X_unlabeled)
    with pytest.raises(ValueError, match=r"of the 160 rows"):
        make(student).fit(X, y)
