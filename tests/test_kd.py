"""KnowledgeDistiller and the Hinton loss."""
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skdistill import KnowledgeDistiller, MLPStudent
from skdistill.losses import DistillationLoss, distillation_loss, soft_cross_entropy, soften

STUDENT = MLPStudent(hidden_layer_sizes=(32,), max_epochs=30, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=400, n_features=8, n_informative=5, n_classes=3,
                               random_state=1)
    return StandardScaler().fit_transform(X), y


def test_distillation_loss_matches_hand_computation():
    z = torch.tensor([[2.0, 0.0, -1.0]])
    q = torch.tensor([[0.6, 0.3, 0.1]])
    T, alpha = 2.0, 0.25
    # By hand: softmax(z) = e^[2,0,-1] / (e^2 + 1 + e^-1)
    denom = np.exp(2) + 1 + np.exp(-1)
    hard = -np.log(np.exp(2) / denom)
    zt = np.array([1.0, 0.0, -0.5])
    log_pt = zt - np.log(np.exp(zt).sum())
    soft = -(np.array([0.6, 0.3, 0.1]) * log_pt).sum()
    expected = (1 - alpha) * hard + alpha * T**2 * soft
    got = distillation_loss(z, torch.tensor([0]), q, T, alpha).item()
    assert got == pytest.approx(expected, rel=1e-6)
    packed = torch.tensor([[0.0, 0.6, 0.3, 0.1]])
    assert DistillationLoss(T, alpha)(z, packed).item() == pytest.approx(expected, rel=1e-6)


def test_soft_cross_entropy_equals_cross_entropy_on_one_hot():
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 1, 1, 2])
    onehot = torch.nn.functional.one_hot(y, 4).float()
    assert soft_cross_entropy(z, onehot).item() == pytest.approx(
        torch.nn.functional.cross_entropy(z, y).item(), rel=1e-6)


def test_soften_by_temperature():
    p = np.array([[0.8, 0.2]])
    # softmax(log p / 2) = sqrt(p) / sum sqrt(p)
    np.testing.assert_allclose(soften(p, 2.0), np.sqrt(p) / np.sqrt(p).sum(), rtol=1e-12)
    assert soften(p, 1.0) is p


def test_student_follows_the_teacher(data):
    """A student distilled from a linear teacher ends up close to the teacher."""
    X, y = data
    teacher = LogisticRegression(C=0.05)
    kd = KnowledgeDistiller(teacher, STUDENT).fit(X, y)
    p_teacher = kd.teacher_.predict_proba(X)
    gap_kd = np.abs(kd.predict_proba(X) - p_teacher).mean()
    gap_labels = np.abs(clone(STUDENT).fit(X, y).predict_proba(X) - p_teacher).mean()
    assert gap_kd < 0.05
    assert gap_kd < gap_labels / 2
    assert list(kd.classes_) == [0, 1, 2] and kd.n_features_in_ == 8


def test_alpha_zero_is_training_on_labels(data):
    X, y = data
    kd = KnowledgeDistiller(LogisticRegression(), STUDENT, alpha=0.0).fit(X, y)
    np.testing.assert_allclose(kd.predict_proba(X), clone(STUDENT).fit(X, y).predict_proba(X),
                               atol=1e-5)


def test_frozen_teacher_is_not_refitted(data):
    X, y = data
    fitted = LogisticRegression().fit(X[:100], y[:100])
    coef = fitted.coef_.copy()
    kd = KnowledgeDistiller(FrozenEstimator(fitted), STUDENT).fit(X, y)
    np.testing.assert_array_equal(fitted.coef_, coef)
    np.testing.assert_array_equal(kd.teacher_.predict_proba(X), fitted.predict_proba(X))


def test_frozen_teacher_with_other_class_order(data):
    """Teacher columns are matched to the distiller's classes by label, not by position."""
    X, y = data
    names = np.array(["a", "b", "c"])[y]
    teacher = LogisticRegression().fit(X, names)
    kd = KnowledgeDistiller(FrozenEstimator(teacher), STUDENT)
    kd.fit(X, names)
    assert list(kd.classes_) == ["a", "b", "c"]
    assert (kd.predict(X) == teacher.predict(X)).mean() > 0.9


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_grid_search_over_student_width(data, n_jobs):
    X, y = data
    search = GridSearchCV(
        KnowledgeDistiller(RandomForestClassifier(n_estimators=20, random_state=0),
                           clone(STUDENT).set_params(max_epochs=5)),
        {"student__width_multiplier": [0.25, 1.0]}, scoring="neg_log_loss", cv=2,
        n_jobs=n_jobs).fit(X, y)
    assert set(search.cv_results_["param_student__width_multiplier"]) == {0.25, 1.0}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_in_a_pipeline(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), KnowledgeDistiller(LogisticRegression(), STUDENT))
    direct = KnowledgeDistiller(LogisticRegression(), STUDENT).fit(X, y)
    np.testing.assert_allclose(pipe.fit(X * 100 + 5, y).predict_proba(X * 100 + 5),
                               direct.predict_proba(X), atol=1e-4)


def test_teacher_without_predict_proba(data):
    X, y = data
    with pytest.raises(ValueError, match="'teacher' parameter of KnowledgeDistiller.*LinearSVC"):
        KnowledgeDistiller(LinearSVC(), STUDENT).fit(X, y)


@pytest.mark.parametrize("param, value", [("temperature", -1.0), ("temperature", 0.0),
                                          ("alpha", 1.5)])
def test_bad_hyperparameters(data, param, value):
    X, y = data
    with pytest.raises(ValueError, match=f"'{param}' parameter of KnowledgeDistiller.*{value}"):
        KnowledgeDistiller(LogisticRegression(), STUDENT, **{param: value}).fit(X, y)


def test_student_that_is_not_a_skdistill_student(data):
    X, y = data
    with pytest.raises(TypeError, match="KnowledgeDistiller: parameter student=LogisticReg"):
        KnowledgeDistiller(LogisticRegression(), LogisticRegression()).fit(X, y)


def test_inf_in_X_names_the_distiller(data):
    X, y = data
    X = X.copy()
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="KnowledgeDistiller: Input X contains infinity"):
        KnowledgeDistiller(LogisticRegression(), STUDENT).fit(X, y)
