"""RankingDistiller and its loss: Menon et al. (2021)'s distilled bipartite ranking."""
import itertools
import pickle

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from skdistill import KnowledgeDistiller, LatentBEStudent, MLPStudent, RankingDistiller
from skdistill import losses
from skdistill.distillers.ranking import platt
from skdistill.losses import DistilledPairwiseLoss, distilled_pairwise_loss

SURROGATES = {"logistic": lambda u: np.log1p(np.exp(-u)), "hinge": lambda u: max(0.0, 1 - u)}


def brute_force(s, p, y, w, alpha, loss):
    """The loss by a double loop over the ordered pairs i != j."""
    ell = SURROGATES[loss]
    num_d = den_d = num_l = den_l = 0.0
    for i, j in itertools.permutations(range(len(s)), 2):
        pair = w[i] * w[j] * p[i] * (1 - p[j])
        num_d += pair * ell(s[i] - s[j])
        den_d += pair
        if y[i] == 1 and y[j] == 0:
            num_l += w[i] * w[j] * ell(s[i] - s[j])
            den_l += w[i] * w[j]
    distilled = num_d / den_d if den_d else 0.0
    labelled = num_l / den_l if den_l else 0.0
    return alpha * distilled + (1 - alpha) * labelled


def _batch(seed, n=9):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    p = rng.uniform(size=n)
    y = rng.choice([-1, 0, 1], size=n)  # -1: a row without a label
    w = rng.uniform(0.2, 2.0, size=n)
    w[0] = 0.0
    return s, p, y, w


def _torch(*arrays):
    return [torch.as_tensor(a) for a in arrays]


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
@pytest.mark.parametrize("alpha", [1.0, 0.3, 0.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_ranking_loss_equals_the_double_sum_over_all_pairs(loss, alpha, seed):
    s, p, y, w = _batch(seed)
    got = distilled_pairwise_loss(*_torch(s, p, y, w), alpha=alpha, loss=loss)
    assert got.dim() == 0
    np.testing.assert_allclose(got.item(), brute_force(s, p, y, w, alpha, loss), rtol=1e-10)
    # the module form, its target packing [label, p, w] and scores shaped (B, 1)
    target = torch.as_tensor(np.column_stack([y, p, w]))
    module = DistilledPairwiseLoss(alpha=alpha, loss=loss)
    np.testing.assert_allclose(module(torch.as_tensor(s)[:, None], target).item(), got.item(),
                               rtol=1e-12)


def test_ranking_loss_without_weights_is_that_with_unit_weights():
    s, p, y, _ = _batch(3)
    ones = np.ones(len(s))
    np.testing.assert_allclose(distilled_pairwise_loss(*_torch(s, p, y), alpha=0.5).item(),
                               brute_force(s, p, y, ones, 0.5, "logistic"), rtol=1e-10)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_ranking_loss_with_a_zero_one_teacher_is_the_labelled_pairwise_risk(loss):
    rng = np.random.default_rng(0)
    s, y = rng.normal(size=12), np.array([1, 0] * 6)
    w = rng.uniform(0.5, 2, size=12)
    ell = SURROGATES[loss]
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    risk = (sum(w[i] * w[j] * ell(s[i] - s[j]) for i in pos for j in neg)
            / sum(w[i] * w[j] for i in pos for j in neg))
    got = distilled_pairwise_loss(*_torch(s, y.astype(float), y, w), alpha=1.0, loss=loss)
    np.testing.assert_allclose(got.item(), risk, rtol=1e-10)
    # the labelled term alone (alpha=0) is the same risk, whatever the teacher says
    got = distilled_pairwise_loss(*_torch(s, rng.uniform(size=12), y, w), alpha=0.0,
                                  loss=loss)
    np.testing.assert_allclose(got.item(), risk, rtol=1e-10)


def test_ranking_loss_of_a_batch_without_pairs_is_zero_with_a_gradient():
    s = torch.tensor([0.5, -0.2, 1.0], requires_grad=True)
    unlabeled = torch.tensor([-1, -1, -1])
    loss = distilled_pairwise_loss(s, torch.tensor([0.5, 0.5, 0.5]), unlabeled, alpha=0.0)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(s.grad, torch.zeros(3))
    one = torch.tensor([0.3], requires_grad=True)
    for n_pairs in (None, 4):
        assert distilled_pairwise_loss(one, torch.tensor([0.9]), torch.tensor([1]),
                                       n_pairs=n_pairs).item() == 0.0
    # a teacher certain that every row is negative: no distilled pair
    assert distilled_pairwise_loss(s, torch.zeros(3), unlabeled).item() == 0.0


def test_ranking_loss_forms_n_pairs_per_batch_whatever_its_size(monkeypatch):
    counted = []
    logistic = losses.PAIRWISE_SURROGATES["logistic"]

    def counting(u):
        counted.append(u.numel())
        return logistic(u)

    monkeypatch.setitem(losses.PAIRWISE_SURROGATES, "logistic", counting)
    for batch in (8, 64, 512):
        s, p, y = torch.randn(batch), torch.rand(batch), torch.randint(0, 2, (batch,))
        distilled_pairwise_loss(s, p, y, n_pairs=32)
        distilled_pairwise_loss(s, p, y)
    assert counted == [32, 8 * 7, 32, 64 * 63, 32, 512 * 511]


def test_ranking_loss_with_many_sampled_pairs_is_near_the_full_loss():
    torch.manual_seed(0)
    s, p, y, w = _torch(*_batch(4, n=20))
    full = distilled_pairwise_loss(s, p, y, w, alpha=0.5).item()
    sampled = distilled_pairwise_loss(s, p, y, w, alpha=0.5, n_pairs=400_000).item()
    assert abs(sampled - full) < 0.01 * full
    # sampled pairs are pairs of different rows: a lone pair (i, i) would add l(0) = log 2
    two_rows = distilled_pairwise_loss(torch.tensor([3.0, 0.0]), torch.tensor([0.5, 0.5]),
                                       torch.tensor([1, 0]), n_pairs=5000).item()
    np.testing.assert_allclose(two_rows, (np.log1p(np.exp(-3)) + np.log1p(np.exp(3))) / 2,
                               rtol=0.05)


def test_ranking_distilled_risk_with_bayes_probabilities_has_lower_variance():
    # Menon et al.'s Lemma 1, by simulation: for a fixed scorer f, the distilled risk with the
    # Bayes probabilities p* estimates the same population risk as the empirical pairwise
    # risk on labels, with a lower variance over draws of the sample.
    rng = np.random.default_rng(0)

    def p_star(x):
        return expit(2.0 * x[:, 0] - x[:, 1] ** 2 + 0.5)

    def f(x):
        return x[:, 0] - 0.3 * x[:, 1]

    def draw(n):
        x = rng.normal(size=(n, 2))
        p = p_star(x)
        return f(x), p, (rng.uniform(size=n) < p).astype(int)

    def risk(s, p, y):
        return distilled_pairwise_loss(*_torch(s, p, y)).item()

    # the population risk: the labelled pairwise risk on a very large sample
    s, p, y = draw(3000)
    pos, neg = s[y == 1], s[y == 0]
    population = np.mean(np.log1p(np.exp(-(pos[:, None] - neg[None, :]))))
    empirical, distilled = [], []
    for _ in range(300):
        s, p, y = draw(40)
        empirical.append(risk(s, y.astype(float), y))
        distilled.append(risk(s, p, y))
    empirical, distilled = np.array(empirical), np.array(distilled)
    assert distilled.var() < 0.5 * empirical.var()
    assert abs(distilled.mean() - population) < 0.02
    assert abs(empirical.mean() - population) < 0.02


def test_ranking_platt_map_recovers_a_sigmoid():
    rng = np.random.default_rng(0)
    s = rng.normal(size=20000)
    y = (rng.uniform(size=s.size) < expit(2.0 * s - 1.0)).astype(int)
    a, b = platt(s, y)
    assert abs(a - 2.0) < 0.1 and abs(b + 1.0) < 0.1
    # weights: each row weighted as many times as it is repeated
    w = rng.integers(1, 3, size=500)
    a_w, b_w = platt(s[:500], y[:500], w.astype(float))
    a_r, b_r = platt(np.repeat(s[:500], w), np.repeat(y[:500], w))
    # the mean and spread used to scale the scores differ, not the fitted map
    np.testing.assert_allclose([a_w, b_w], [a_r, b_r], rtol=0.05, atol=0.02)
    # a decreasing relation still gives an increasing map: the scores' order is kept
    assert platt(s, 1 - y)[0] > 0


# -- the estimator ---------------------------------------------------------------------------
def _student(**kw):
    return MLPStudent(**{"hidden_layer_sizes": (16,), "max_epochs": 15, "lr": 1e-2,
                         "random_state": 0, **kw})


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=500, n_features=8, n_informative=5, random_state=0)
    return X[:300], y[:300], X[300:], y[300:]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return RankingDistiller(RandomForestClassifier(50, random_state=0), _student(),
                            random_state=0).fit(X, y)


def test_ranking_student_ranks_about_as_well_as_its_teacher(data, fitted):
    _, _, X_test, y_test = data
    teacher_auc = roc_auc_score(y_test, fitted.teacher_.predict_proba(X_test)[:, 1])
    auc = roc_auc_score(y_test, fitted.decision_function(X_test))
    assert auc > teacher_auc - 0.05 and auc > 0.9


def test_ranking_predictions_are_consistent_and_the_sigmoid_map_is_in_the_student(data,
                                                                                   fitted):
    _, _, X_test, _ = data
    proba, decision = fitted.predict_proba(X_test), fitted.decision_function(X_test)
    np.testing.assert_allclose(proba.sum(1), 1)
    np.testing.assert_allclose(decision, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_array_equal(fitted.predict(X_test), fitted.classes_[(decision > 0) * 1])
    np.testing.assert_allclose(fitted.predict_log_proba(X_test), np.log(proba), atol=1e-10)
    # the Platt map is written into the student's network: student_ predicts the same
    np.testing.assert_allclose(fitted.student_.predict_proba(X_test), proba, rtol=1e-12)
    a, b = fitted.student_.module_.calibration.tolist()
    assert a > 0 and (a, b) != (1.0, 0.0)
    assert fitted.calibrator_ is None
    # the network's score is one output
    assert fitted.student_.module_.scorer(torch.zeros(2, 8)).shape == (2, 1)


def test_ranking_sigmoid_map_is_fitted_on_the_held_out_rows(data, fitted):
    X, y, _, _ = data
    held = fitted.calibration_rows_
    d = fitted.decision_function(X[held])
    a, b = fitted.student_.module_.calibration.tolist()
    raw = (d - b) / a  # the student's score before the map
    np.testing.assert_allclose([a, b], platt(raw, y[held]), rtol=1e-5, atol=1e-6)


def test_ranking_held_out_rows_are_neither_the_teachers_nor_the_students(data):
    X, y, _, _ = data

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            type(self).seen = X.copy()
            return super().fit(X, y, sample_weight)

    model = RankingDistiller(Recording(), _student(max_epochs=2),
                             calibration_fraction=0.25, random_state=0).fit(X, y)
    held = model.calibration_rows_
    for k in (0, 1):
        assert np.sum(y[held] == k) == round(0.25 * np.sum(y == k))
    seen = {tuple(row) for row in Recording.seen}
    assert len(seen) == len(X) - len(held)
    assert not seen & {tuple(row) for row in X[held]}
    # the student's epochs went over the other rows only
    assert sum(model.history_[0]["batches"][i]["train_batch_size"]
               for i in range(len(model.history_[0]["batches"]))) == len(X) - len(held)


def test_ranking_isotonic_calibration(data):
    X, y, X_test, y_test = data
    model = RankingDistiller(RandomForestClassifier(20, random_state=0), _student(),
                             calibration="isotonic", random_state=0).fit(X, y)
    proba, decision = model.predict_proba(X_test), model.decision_function(X_test)
    held = model.calibration_rows_
    raw = model._log_odds(X[held])
    assert model.calibrator_ is not None
    q = np.clip(model.calibrator_.predict(model._log_odds(X_test)), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(proba[:, 1], q)
    np.testing.assert_allclose(decision, np.log(q / (1 - q)))
    np.testing.assert_array_equal(model.predict(X_test), model.classes_[(decision > 0) * 1])
    # an increasing map, fitted on the held-out rows: the mean probability there is their
    # positive rate (isotonic regression keeps the mean)
    np.testing.assert_allclose(model.calibrator_.predict(raw).mean(), y[held].mean())


def test_ranking_rows_without_labels_are_learnt_from():
    # XOR: a dozen labelled rows cannot show it; a teacher that knows it, on unlabelled rows,
    # can
    rng = np.random.default_rng(0)

    def xor(n):
        X = rng.uniform(-1, 1, size=(n, 2))
        return X, (X[:, 0] * X[:, 1] > 0).astype(int)

    X_big, y_big = xor(2000)
    teacher = FrozenEstimator(RandomForestClassifier(100, random_state=0).fit(X_big, y_big))
    X, y = xor(12)
    X_unlabeled, _ = xor(600)
    X_test, y_test = xor(500)
    student = _student(hidden_layer_sizes=(32, 32), max_epochs=30, batch_size=64)
    kw = dict(calibration_fraction=0.3, random_state=0)
    alone = RankingDistiller(teacher, student, **kw).fit(X, y)
    more = RankingDistiller(teacher, student, **kw).fit(X, y, X_unlabeled=X_unlabeled)
    auc_alone = roc_auc_score(y_test, alone.decision_function(X_test))
    auc_more = roc_auc_score(y_test, more.decision_function(X_test))
    assert auc_more > 0.9 and auc_more > auc_alone + 0.1


def test_ranking_rows_of_weight_zero_have_no_influence(data):
    X, y, X_test, _ = data
    w = np.ones(len(y))
    w[::5] = 0.0
    X_noise = X.copy()
    X_noise[::5] = np.random.default_rng(0).normal(scale=3.0, size=X_noise[::5].shape)

    def fit(X, sample_weight):
        return RankingDistiller(LogisticRegression(), _student(max_epochs=5),
                                random_state=0).fit(X, y, sample_weight=sample_weight)

    ref = fit(X, w).predict_proba(X_test)
    np.testing.assert_allclose(fit(X_noise, w).predict_proba(X_test), ref, rtol=1e-5,
                               atol=1e-6)
    # and the weights matter: unweighted, the noise changes the predictions
    assert not np.allclose(fit(X_noise, None).predict_proba(X_test), ref, atol=1e-3)


def test_ranking_cross_fitted_and_calibrated_teacher(data):
    X, y, X_test, y_test = data
    model = RankingDistiller(RandomForestClassifier(20, random_state=0), _student(),
                             n_folds=3, teacher_calibration="temperature",
                             random_state=0).fit(X, y, X_unlabeled=X_test[:50])
    n_train = len(X) - len(model.calibration_rows_)
    assert len(model.fold_teachers_) == 3 and model.oof_proba_.shape == (n_train, 2)
    in_sample = model.teacher_.predict_proba(np.delete(X, model.calibration_rows_, axis=0))
    assert not np.allclose(model.oof_proba_, in_sample)  # held out: less confident
    assert model.teacher_calibrator_ is not None
    assert roc_auc_score(y_test, model.decision_function(X_test)) > 0.9
    # without them, only what predicts
    light = RankingDistiller(RandomForestClassifier(5, random_state=0), _student(max_epochs=2),
                             n_folds=2, keep_teachers=False, random_state=0).fit(X, y)
    with pytest.raises(AttributeError, match="keep_teachers=False"):
        light.fold_teachers_


def test_ranking_refuses_more_than_two_classes_and_too_few_rows():
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=r"^RankingDistiller: Only binary classification is "
                                         r"supported\. .* parameter y has 3 classes "
                                         r"\[0, 1, 2\]; bipartite ranking needs two"):
        RankingDistiller(LogisticRegression(), _student()).fit(X, np.arange(30) % 3)
    assert not RankingDistiller().__sklearn_tags__().classifier_tags.multi_class
    y = np.array([0] * 29 + [1])
    with pytest.raises(ValueError, match=r"^RankingDistiller: parameter y='<labels with 1 "
                                         r"row of class 1>' is invalid; expected at least 2 rows"):
        RankingDistiller(LogisticRegression(), _student()).fit(X, y)
    with pytest.raises(TypeError, match=r"^RankingDistiller: parameter student=LatentBEStudent"
                                        r"\(.*\) is invalid; expected a student that predicts "
                                        r"with the network it trains"):
        RankingDistiller(LogisticRegression(), LatentBEStudent()).fit(X, np.arange(30) % 2)
    frozen = FrozenEstimator(LogisticRegression().fit(X, np.arange(30) % 2))
    with pytest.raises(ValueError, match=r"^RankingDistiller: parameter n_folds=3 is "
                                         r"invalid; expected None with a FrozenEstimator"):
        RankingDistiller(frozen, _student(), n_folds=3).fit(X, np.arange(30) % 2)


def test_ranking_grid_search_on_auc_and_log_loss_and_pickle(data):
    X, y, X_test, y_test = data
    model = RankingDistiller(LogisticRegression(), _student(max_epochs=5), random_state=0)
    for scoring in ("roc_auc", "neg_log_loss"):
        search = GridSearchCV(model, {"alpha": [0.0, 1.0]}, scoring=scoring, cv=2).fit(X, y)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    again = pickle.loads(pickle.dumps(best))
    np.testing.assert_array_equal(again.predict_proba(X_test), best.predict_proba(X_test))
    np.testing.assert_array_equal(again.decision_function(X_test),
                                  best.decision_function(X_test))


def test_ranking_distiller_against_kd_on_strings_and_dataframes():
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200),
                          "job": rng.choice(["a", "b", "c"], 200).astype(object)})
    y = (frame["x"] + 1.5 * (frame["job"] == "b") > 0.5).astype(int).to_numpy()
    encode = ColumnTransformer([("x", StandardScaler(), ["x"]),
                                ("job", OneHotEncoder(), ["job"])])
    student = Pipeline([("encode", encode), ("net", _student(max_epochs=20))])
    teacher = Pipeline([("encode", encode), ("rf", RandomForestClassifier(50, random_state=0))])
    model = RankingDistiller(teacher, student, random_state=0).fit(frame, y)
    kd = KnowledgeDistiller(teacher, student, random_state=0).fit(frame, y)
    assert roc_auc_score(y, model.decision_function(frame)) > 0.9
    assert list(model.feature_names_in_) == list(kd.feature_names_in_) == ["x", "job"]


def test_ranking_onnx_export_has_the_sigmoid_map_and_refuses_the_isotonic_one(data, fitted):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from skdistill.onnx import to_onnx

    X, y, X_test, _ = data
    X_test = X_test.astype(np.float32)
    onx = to_onnx(fitted, X_test, options={id(fitted): {"zipmap": False}})
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {session.get_inputs()[0].name: X_test})
    np.testing.assert_allclose(proba, fitted.predict_proba(X_test), atol=1e-5)
    np.testing.assert_array_equal(label, fitted.predict(X_test))
    isotonic = RankingDistiller(LogisticRegression(), _student(max_epochs=2),
                                calibration="isotonic", random_state=0).fit(X, y)
    with pytest.raises(TypeError, match=r"^RankingDistiller: parameter calibration='isotonic' "
                                        r"is invalid; expected 'sigmoid' for ONNX export"):
        to_onnx(isotonic, X_test)


def test_ranking_metadata_routing_gives_the_teacher_the_weights_of_its_rows(data):
    import sklearn

    X, y, _, _ = data

    class Recording(LogisticRegression):
        def fit(self, X, y, sample_weight=None):
            type(self).weights = sample_weight
            return super().fit(X, y, sample_weight)

    w = np.arange(len(y), dtype=float) + 1.0
    with sklearn.config_context(enable_metadata_routing=True):
        model = RankingDistiller(Recording().set_fit_request(sample_weight=True),
                                 _student(max_epochs=2), random_state=0)
        model.fit(X, y, sample_weight=w)
    trained = np.setdiff1d(np.arange(len(y)), model.calibration_rows_)
    np.testing.assert_array_equal(Recording.weights, w[trained])
