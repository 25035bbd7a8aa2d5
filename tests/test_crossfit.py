"""CrossFitDistiller and the gamma loss correction of Dao et al. (2021)."""
import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeRegressor

from skdistill import CrossFitDistiller, MLPStudent
from skdistill.datasets import make_gaussian_mixture
from skdistill.losses import (corrected_targets, gamma_correction, squared_error_logits,
                              squared_error_proba)

FAST_MLP = dict(hidden_layer_sizes=(16,), max_epochs=30, lr=1e-2, random_state=0)


@pytest.fixture(scope="module")
def binary():
    return make_classification(n_samples=300, n_features=6, n_informative=4, flip_y=0.1,
                               random_state=0)


# -- the correction itself: hand-computed values ---------------------------------------------
Y = np.array([[0.0, 1.0], [1.0, 0.0]])
P = np.array([[0.2, 0.8], [0.4, 0.6]])


def test_gamma_alpha_zero_is_no_correction():
    assert np.array_equal(gamma_correction(Y, P, 0.0), np.zeros_like(P))
    assert np.array_equal(corrected_targets(Y, P, 0.0), P)
    assert np.allclose(corrected_targets(Y, P, 0.0, scale="logp"), np.log(P))


def test_gamma_middle_alpha_matches_hand_computed_values():
    # alpha = 0.04: gamma = 0.04 / (0.04 + (y - p)^2); (y - p)^2 is 0.04 and 0.36 here.
    gamma = gamma_correction(Y, P, 0.04)
    assert np.allclose(gamma, [[0.5, 0.5], [0.1, 0.1]])
    assert np.allclose(corrected_targets(Y, P, 0.04), [[0.1, 0.9], [0.46, 0.54]])
    # log scale: gamma is divided by p; target log p + gamma (y - p).
    gamma_log = gamma_correction(Y, P, 0.04, scale="logp")
    assert np.allclose(gamma_log, [[2.5, 0.625], [0.25, 1 / 6]])
    expected = np.log(P) + gamma_log * (Y - P)
    assert np.allclose(corrected_targets(Y, P, 0.04, scale="logp"), expected)
    assert np.isclose(expected[0, 0], np.log(0.2) - 0.5)


def test_gamma_infinite_alpha_is_the_orthogonal_loss():
    assert np.allclose(corrected_targets(Y, P, np.inf), Y)  # p + (y - p)
    assert np.allclose(corrected_targets(Y, P, np.inf, scale="logp"), np.log(P) + Y / P - 1)


def test_gamma_is_the_argmin_of_the_issue_objective():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, size=20)
    y = (rng.uniform(size=20) < 0.5).astype(float)
    grid = np.linspace(-5, 120, 250001)[:, None]
    for scale, g0 in (("p", np.ones_like(p)), ("logp", 1 / p)):
        objective = grid**2 * (y - p) ** 2 + 0.3 * (g0 - grid) ** 2
        brute = grid[np.argmin(objective, axis=0), 0]
        assert np.allclose(gamma_correction(y, p, 0.3, scale=scale), brute, atol=1e-3)


def test_log_scale_clips_p_at_the_floor():
    y, p = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    assert np.allclose(corrected_targets(y, p, 0.0, scale="logp"), [[np.log(1 / 500), 0.0]])
    assert np.allclose(gamma_correction(y, p, np.inf, scale="logp"), [[500.0, 1.0]])


def test_correction_on_torch_tensors_matches_numpy():
    out = corrected_targets(torch.tensor(Y), torch.tensor(P), 0.04, scale="logp")
    assert torch.is_tensor(out)
    assert np.allclose(out.numpy(), corrected_targets(Y, P, 0.04, scale="logp"))


@pytest.mark.parametrize("alpha", [-1.0, np.nan])
def test_correction_rejects_negative_or_nan_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        gamma_correction(Y, P, alpha)


def test_squared_error_losses_match_hand_computed_values():
    z = torch.tensor([[0.0, np.log(3.0)]])  # softmax = [0.25, 0.75]
    t = torch.tensor([[0.5, 0.5]])
    assert squared_error_logits(z, t).item() == pytest.approx(0.5 * (0.25 + (np.log(3) - .5) ** 2))
    assert squared_error_proba(z, t).item() == pytest.approx(0.0625 + 0.0625)


# -- cross-fitting ------------------------------------------------------------------------------
def test_crossfit_teacher_never_sees_its_fold(binary):
    X, y = binary
    model = CrossFitDistiller(KNeighborsClassifier(n_neighbors=1),
                              RandomForestRegressor(n_estimators=3), n_folds=4,
                              random_state=0).fit(X, y)
    # A 1-NN teacher memorises its training set: on it, its probabilities are the labels...
    assert np.array_equal(model.teacher_.predict_proba(X)[:, 1], y)
    # ... but the out-of-fold ones come from the nearest *other* point, so they often differ.
    oof = model.oof_proba_[:, 1]
    assert set(np.unique(oof)) <= {0.0, 1.0}
    assert 0.05 < np.mean(oof != y) < 0.5
    assert len(model.fold_teachers_) == 4
    sizes = sorted(t.n_samples_fit_ for t in model.fold_teachers_)
    assert sizes[0] >= len(y) * 3 // 4 - 1 and sizes[-1] <= len(y) * 3 // 4 + 1


def test_oof_proba_is_each_fold_teachers_prediction(binary):
    X, y = binary
    model = CrossFitDistiller(KNeighborsClassifier(n_neighbors=5),
                              RandomForestRegressor(n_estimators=3), n_folds=3,
                              refit_teacher=False, random_state=0).fit(X, y)
    assert not hasattr(model, "teacher_")
    covered = np.zeros(len(y), dtype=int)
    for teacher in model.fold_teachers_:
        # A k-NN teacher keeps the rows it was fitted on.
        seen = (X[:, None, :] == teacher._fit_X[None, :, :]).all(axis=2).any(axis=1)
        covered[~seen] += 1
        assert np.allclose(model.oof_proba_[~seen], teacher.predict_proba(X[~seen]))
    assert np.all(covered == 1)  # every row is held out by exactly one fold teacher


def test_student_is_fitted_to_the_corrected_out_of_fold_targets(binary):
    X, y = binary
    for alpha, loss in [(0.0, "ce"), (0.05, "mse"), (np.inf, "ce"), (0.05, "sel")]:
        model = CrossFitDistiller(LogisticRegression(), DecisionTreeRegressor(), n_folds=3,
                                  gamma_alpha=alpha, loss=loss, random_state=0).fit(X, y)
        scale = "logp" if loss == "sel" else "p"
        expected = corrected_targets(np.eye(2)[y], model.oof_proba_, alpha, scale)[:, 1]
        # A full-depth tree reproduces its training targets: one output column for binary y.
        assert model.student_.n_outputs_ == 1
        assert np.allclose(model.student_.predict(X), expected)
        q = expected if scale == "p" else np.exp(expected)
        assert np.allclose(model.predict_proba(X)[:, 1], np.clip(q, 0, 1))


@pytest.mark.parametrize("gamma_alpha", [0.0, 0.05])
def test_temperature_does_not_soften_a_regressor_students_targets(gamma_alpha):
    # Temperature belongs to the soft-target cross-entropy of a network student; a regressor
    # student is fitted to the corrected targets of the unsoftened out-of-fold probabilities,
    # so with T=4 a full-depth tree reproduces them on its training rows, exactly as with T=1.
    X, y = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0,
                               random_state=1)
    for temperature in (1.0, 4.0):
        model = CrossFitDistiller(RandomForestClassifier(n_estimators=10, random_state=0),
                                  DecisionTreeRegressor(max_depth=None), n_folds=3,
                                  gamma_alpha=gamma_alpha, loss="ce",
                                  temperature=temperature, random_state=0).fit(X, y)
        expected = corrected_targets(np.eye(2)[y], model.oof_proba_, gamma_alpha, "p")
        assert np.allclose(model.predict_proba(X), expected, atol=1e-6, rtol=0)
    # Multiclass: one output column per class, still on the unsoftened probability scale.
    X, y = load_iris(return_X_y=True)
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=10, random_state=0),
                              DecisionTreeRegressor(max_depth=None), n_folds=3,
                              gamma_alpha=gamma_alpha, temperature=4.0, random_state=0).fit(X, y)
    expected = corrected_targets(np.eye(3)[y], model.oof_proba_, gamma_alpha, "p")
    assert np.allclose(model.student_.predict(X), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("loss", ["ce", "sel", "mse"])
def test_multiclass_with_regressor_and_network_students(loss):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for student in (RandomForestRegressor(n_estimators=10, random_state=0), MLPStudent(**FAST_MLP)):
        model = CrossFitDistiller(LogisticRegression(), student, n_folds=3, gamma_alpha=0.01,
                                  loss=loss, random_state=0).fit(X, y)
        proba = model.predict_proba(X)
        assert proba.shape == (150, 3)
        assert np.allclose(proba.sum(axis=1), 1) and proba.min() >= 0
        assert model.score(X, y) > 0.85
        assert np.array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    assert model.student_.n_outputs_ == 3 if hasattr(model.student_, "n_outputs_") else True


def test_crossfit_student_is_closer_to_bayes_than_vanilla_kd():
    X, y, bayes = make_gaussian_mixture(n_samples=1600, n_classes=3, class_sep=1.5,
                                        random_state=0)
    X_test, bayes_test = X[800:], bayes[800:]
    X, y = X[:800], y[:800]
    # A fully grown forest is nearly certain on its own training points: an overfitting
    # teacher whose in-sample probabilities carry the label noise; its out-of-fold ones do not.
    teacher = RandomForestClassifier(n_estimators=50, random_state=0)
    student = DecisionTreeRegressor(min_samples_leaf=5, random_state=0)
    crossfit = CrossFitDistiller(teacher, student, n_folds=5, random_state=0).fit(X, y)
    # Vanilla KD: the same student fitted to the full teacher's in-sample probabilities.
    vanilla = clone(student).fit(X, crossfit.teacher_.predict_proba(X))
    p_vanilla = np.clip(vanilla.predict(X_test), 0, 1)
    p_vanilla /= p_vanilla.sum(axis=1, keepdims=True)
    err_vanilla = np.abs(p_vanilla - bayes_test).sum(axis=1).mean()
    err_crossfit = np.abs(crossfit.predict_proba(X_test) - bayes_test).sum(axis=1).mean()
    assert err_crossfit < 0.85 * err_vanilla  # measured: 0.171 vs 0.232


# -- scikit-learn integration ---------------------------------------------------------------
def test_grid_search_over_gamma_alpha_and_n_folds_in_a_pipeline(binary):
    X, y = binary
    pipe = make_pipeline(StandardScaler(), CrossFitDistiller(
        LogisticRegression(), RandomForestRegressor(n_estimators=3), random_state=0))
    grid = {"crossfitdistiller__gamma_alpha": [0.0, 0.01, np.inf],
            "crossfitdistiller__n_folds": [2, 3]}
    search = GridSearchCV(pipe, grid, cv=2, scoring="roc_auc").fit(X, y)
    assert set(search.best_params_) == set(grid)
    assert search.score(X, y) > 0.8


def test_grid_search_over_student_width_multiplier(binary):
    X, y = binary
    student = MLPStudent(**{**FAST_MLP, "max_epochs": 5})
    model = CrossFitDistiller(LogisticRegression(), student, n_folds=2, random_state=0)
    search = GridSearchCV(model, {"student__width_multiplier": [0.5, 1.0]}, cv=2).fit(X, y)
    assert search.best_estimator_.student_.module_ is not None


def test_fold_teachers_run_through_the_joblib_backend(binary):
    X, y = binary
    seen = []

    class SpyBackend(joblib.parallel.ThreadingBackend):
        def configure(self, *args, **kwargs):
            seen.append(True)
            return super().configure(*args, **kwargs)

    joblib.register_parallel_backend("skdistill_spy", SpyBackend)
    kwargs = dict(teacher=RandomForestClassifier(n_estimators=10, random_state=0),
                  student=RandomForestRegressor(n_estimators=3, random_state=0), n_folds=3,
                  random_state=0)
    serial = CrossFitDistiller(n_jobs=1, **kwargs).fit(X, y)
    with joblib.parallel_config(backend="skdistill_spy"):
        threaded = CrossFitDistiller(n_jobs=2, **kwargs).fit(X, y)
    assert seen
    assert np.allclose(serial.oof_proba_, threaded.oof_proba_)
    assert np.allclose(serial.predict_proba(X), threaded.predict_proba(X))


def test_random_state_makes_fits_reproducible(binary):
    X, y = binary
    kwargs = dict(teacher=RandomForestClassifier(n_estimators=10),
                  student=RandomForestRegressor(n_estimators=3), n_folds=3, random_state=7)
    a = CrossFitDistiller(**kwargs).fit(X, y)
    b = CrossFitDistiller(**kwargs).fit(X, y)
    assert np.array_equal(a.oof_proba_, b.oof_proba_)
    assert np.array_equal(a.predict_proba(X), b.predict_proba(X))


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("params, match", [
    ({"n_folds": 1}, r"n_folds.*CrossFitDistiller|CrossFitDistiller.*n_folds"),
    ({"gamma_alpha": -0.5}, "gamma_alpha"),
    ({"gamma_alpha": np.nan}, "gamma_alpha"),
    ({"loss": "hinge"}, "loss"),
    ({"teacher": LinearSVC()}, "teacher"),
    ({"student": StandardScaler()}, "student"),
])
def test_bad_parameters_name_the_parameter(binary, params, match):
    X, y = binary
    model = CrossFitDistiller(**{"student": RandomForestRegressor(n_estimators=2), **params})
    with pytest.raises(ValueError, match=match) as info:
        model.fit(X, y)
    assert "CrossFitDistiller" in str(info.value)


def test_more_folds_than_the_smallest_class_is_an_error():
    X, y = load_iris(return_X_y=True)
    keep = np.r_[0:50, 50:100, 100:104]  # the third class has 4 members
    model = CrossFitDistiller(LogisticRegression(), RandomForestRegressor(n_estimators=2),
                              n_folds=5)
    with pytest.raises(ValueError, match=r"CrossFitDistiller: parameter n_folds=5 .*at most 4"):
        model.fit(X[keep], y[keep])


@pytest.mark.parametrize("student", [LogisticRegression(), KMeans(n_clusters=2)])
def test_student_neither_skdistill_classifier_nor_regressor_is_an_error(binary, student):
    X, y = binary
    with pytest.raises(TypeError, match=r"CrossFitDistiller: parameter student=.*regressor"):
        CrossFitDistiller(LogisticRegression(), student, n_folds=2).fit(X, y)


def test_frozen_teacher_cannot_be_cross_fitted(binary):
    X, y = binary
    frozen = FrozenEstimator(LogisticRegression().fit(X, y))
    with pytest.raises(TypeError, match=r"CrossFitDistiller: parameter teacher=.*FrozenEstimator"):
        CrossFitDistiller(frozen, RandomForestRegressor(n_estimators=2)).fit(X, y)


def test_random_state_may_be_a_random_state_instance(binary):
    X, y = binary
    model = CrossFitDistiller(RandomForestClassifier(n_estimators=5),
                              RandomForestRegressor(n_estimators=2), n_folds=3,
                              random_state=np.random.RandomState(0)).fit(X, y)
    assert model.score(X, y) > 0.7
