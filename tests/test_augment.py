"""Synthetic transfer sets: MUNGE and Gaussian noise (skdistill.augment), and the distillers'
``augment`` / ``augment_size``, whose rows the teacher labels as it labels ``X_unlabeled``."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._param_validation import InvalidParameterError

from skdistill import CrossFitDistiller, KnowledgeDistiller, MLPStudent
from skdistill.augment import GaussianNoise, Munge, _munge_pass, _nearest_other, _Table

AUGMENTERS = [Munge(), Munge(p=1.0, s=2.0), GaussianNoise()]
IDS = ["munge", "munge-p1", "gaussian"]


def adult_like(n=80, seed=0):
    """An Adult-like table: int, float (NaN), string, category (NaN, an unused category),
    bool, a nullable Int64 column (NA) and float32."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "hours": rng.normal(40, 8, n),
        "workclass": rng.choice(["Private", "State-gov", "Self-emp"], n),
        "race": pd.Categorical(rng.choice(["a", "b", "c"], n), categories=["a", "b", "c", "z"]),
        "male": rng.random(n) > 0.5,
        "children": pd.array(rng.integers(0, 4, n), dtype="Int64"),
        "score": rng.normal(0, 1, n).astype(np.float32),
    })
    X.loc[::7, "hours"] = np.nan
    X.loc[::9, "race"] = np.nan
    X.loc[::5, "children"] = pd.NA
    y = ((X["age"] > 45) ^ (X["workclass"] == "Private")).to_numpy().astype(int)
    return X, y


# -- the rows: kinds, dtypes, seeds -------------------------------------------------------------
@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.uint8, bool, "U3",
                                   object])
def test_an_array_gives_an_array_of_its_dtype(augmenter, dtype):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 9, size=(30, 3)).astype(dtype)
    out = augmenter.sample(X, 45, random_state=0)
    assert isinstance(out, np.ndarray) and out.dtype == X.dtype and out.shape == (45, 3)
    if np.dtype(dtype).kind in "iu":  # rounded back, within the dtype's range
        assert out.min() >= np.iinfo(dtype).min
    if np.dtype(dtype).kind in "bUS":  # nominal: only the column's own values
        for j in range(3):
            assert set(out[:, j]) <= set(X[:, j])


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=IDS)
def test_a_frame_gives_a_frame_with_its_columns_and_dtypes(augmenter):
    X, _ = adult_like()
    out = augmenter.sample(X, 130, random_state=0)
    assert isinstance(out, pd.DataFrame) and out.shape == (130, X.shape[1])
    assert list(out.columns) == list(X.columns)
    assert out.dtypes.to_dict() == X.dtypes.to_dict()
    assert list(out["race"].cat.categories) == ["a", "b", "c", "z"]
    assert list(out.index) == list(range(130))
    # nominal columns hold values seen in that column (missing included), nothing else
    for name in ["workclass", "race", "male"]:
        assert set(out[name].dropna()) <= set(X[name].dropna())
    assert out["race"].isna().any() and out["hours"].isna().any()
    assert (out["age"] == out["age"].round()).all()  # int columns rounded back


@pytest.mark.parametrize("augmenter", AUGMENTERS, ids=IDS)
def test_the_same_seed_gives_the_same_rows_another_seed_others(augmenter):
    X, _ = adult_like()
    first = augmenter.sample(X, 100, random_state=3)
    pd.testing.assert_frame_equal(first, augmenter.sample(X, 100, random_state=3))
    assert not first.equals(augmenter.sample(X, 100, random_state=4))


def test_an_object_array_keeps_strings_and_numbers():
    X, _ = adult_like()
    A = X[["age", "hours", "workclass", "male"]].to_numpy(dtype=object)
    out = Munge(p=1.0).sample(A, 50, random_state=0)
    assert out.dtype == object and out.shape == (50, 4)
    assert all(isinstance(v, int) for v in out[:, 0])  # an int column stays ints
    assert all(isinstance(v, float) for v in out[:, 1])
    assert set(out[:, 2]) <= set(A[:, 2]) and set(out[:, 3]) <= {True, False}


def test_categorical_features_names_numeric_columns_as_nominal():
    # each row's nearest neighbour has another code: as numbers, the codes would be drawn anew
    X = np.column_stack([np.arange(6.0), [0.0, 10.0, 20.0] * 2])
    for chosen in ([1], [False, True]):
        out = Munge(p=1.0, categorical_features=chosen).sample(X, 200, random_state=0)
        assert set(out[:, 1]) <= {0.0, 10.0, 20.0}
        assert not set(out[:, 0]) <= set(X[:, 0])  # continuous: new values
    frame = pd.DataFrame(X, columns=["x", "code"])
    out = Munge(p=1.0, categorical_features=["code"]).sample(frame, 200, random_state=0)
    assert set(out["code"]) <= {0.0, 10.0, 20.0}
    out = Munge(p=1.0).sample(X, 200, random_state=0)
    assert not set(out[:, 1]) <= {0.0, 10.0, 20.0}  # from_dtype: numbers are continuous


# -- MUNGE's maths -------------------------------------------------------------------------------
def test_p_zero_gives_copies_of_the_rows_in_passes():
    X, _ = adult_like(n=20)
    out = Munge(p=0.0).sample(X, 47, random_state=0)
    pd.testing.assert_frame_equal(out.iloc[:40], pd.concat([X, X], ignore_index=True))
    rest = out.iloc[40:].reset_index(drop=True)
    # the last pass in part: 7 of its rows, in order, each a real row
    merged = rest.astype(str).merge(X.astype(str), how="left", indicator=True)
    assert (merged["_merge"] == "both").all() and len(rest) == 7
    rows = np.array([[0.0, 1.0], [0.1, 1.2], [5.0, 5.0]])
    assert np.array_equal(Munge(p=0.0).sample(rows, random_state=0), rows)


def test_identical_rows_stay_as_they_are():
    X = pd.DataFrame({"x": [1.5, 1.5], "c": ["a", "a"]})
    out = Munge(p=1.0, s=0.5).sample(X, 6, random_state=0)
    pd.testing.assert_frame_equal(out, pd.concat([X] * 3, ignore_index=True))


def _row_by_row(C, R, neighbours, coins_c, coins_k, z1, z2, s):
    """The paper's loop, one row at a time (the reference for _munge_pass)."""
    C, R = C.copy(), R.copy()
    for e, o in enumerate(neighbours):
        for a in range(C.shape[1]):
            if not coins_c[e, a]:
                continue
            old_e, old_o = C[e, a], C[o, a]
            if np.isnan(old_e) or np.isnan(old_o):
                C[e, a], C[o, a] = old_o, old_e
                continue
            sd = abs(old_e - old_o) / s
            C[e, a] = old_o + sd * z1[e, a]
            C[o, a] = old_e + sd * z2[e, a]
        for a in range(R.shape[1]):
            if coins_k[e, a]:
                R[e, a], R[o, a] = R[o, a], R[e, a]
    return C, R


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_batched_pass_is_the_papers_row_by_row_loop(seed):
    rng = np.random.default_rng(seed)
    n = 60
    C = rng.normal(size=(n, 3))
    C[rng.random((n, 3)) < 0.1] = np.nan
    R = np.tile(np.arange(n), (2, 1)).T
    # a neighbour graph with chains and mutual pairs (both e and e' change, in order)
    neighbours = np.where(rng.random(n) < 0.5, (np.arange(n) + 1) % n, rng.integers(0, n, n))
    neighbours = np.where(neighbours == np.arange(n), (neighbours + 1) % n, neighbours)
    coins_c, coins_k = rng.random((n, 3)) < 0.6, rng.random((n, 2)) < 0.6
    z1, z2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    expected = _row_by_row(C, R, neighbours, coins_c, coins_k, z1, z2, 2.0)
    _munge_pass(C, R, neighbours, coins_c, coins_k, z1, z2, 2.0)
    np.testing.assert_allclose(C, expected[0])
    np.testing.assert_array_equal(R, expected[1])


def test_a_pair_draws_around_the_neighbours_value_with_spread_distance_over_s():
    # 20,000 disjoint pairs (2k, 2k+1), only row 2k's turn flips its coins
    rng = np.random.default_rng(0)
    m, s = 20_000, 4.0
    C = np.tile([[1.0], [9.0]], (m, 1))
    R = np.tile(np.arange(2 * m), (1, 1)).T
    neighbours = np.arange(2 * m) ^ 1
    coins = np.zeros((2 * m, 1), dtype=bool)
    coins[::2] = True
    z1, z2 = rng.normal(size=(2 * m, 1)), rng.normal(size=(2 * m, 1))
    _munge_pass(C, R, neighbours, coins, coins, z1, z2, s)
    sd = 8.0 / s
    e, other = C[::2, 0], C[1::2, 0]
    assert abs(e.mean() - 9.0) < 0.05 and abs(e.std() - sd) < 0.05
    assert abs(other.mean() - 1.0) < 0.05 and abs(other.std() - sd) < 0.05
    # the nominal value is swapped: each row now holds its neighbour's
    np.testing.assert_array_equal(R[:, 0], neighbours)


def test_a_missing_value_is_swapped():
    C = np.array([[np.nan, 1.0], [5.0, 2.0]])
    R = np.zeros((2, 0), dtype=int)
    coins = np.array([[True, False], [False, False]])
    z = np.ones((2, 2))
    _munge_pass(C, R, np.array([1, 0]), coins, np.zeros((2, 0), bool), z, z, 1.0)
    np.testing.assert_array_equal(C, [[5.0, 1.0], [np.nan, 2.0]])


def test_neighbours_are_nearest_after_unit_spread_with_one_per_nominal_mismatch():
    rng = np.random.default_rng(0)
    n = 40
    X = pd.DataFrame({"big": rng.normal(0, 1000, n), "small": rng.normal(0, 0.01, n),
                      "c": rng.choice(["a", "b", "c"], n)})
    X.loc[::6, "small"] = np.nan
    found = _nearest_other(_Table(Munge(), X, "from_dtype").encoded())
    big = (X["big"] - X["big"].mean()) / X["big"].std(ddof=0)
    small = (X["small"] - X["small"].mean()) / X["small"].std(ddof=0)
    missing = small.isna().to_numpy()
    small = small.fillna(0).to_numpy()
    d = ((big.to_numpy()[:, None] - big.to_numpy()) ** 2 + (small[:, None] - small) ** 2
         + (missing[:, None] != missing) + (X["c"].to_numpy()[:, None] != X["c"].to_numpy()))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_array_equal(found, d.argmin(axis=1))


# -- Gaussian noise ------------------------------------------------------------------------------
def test_gaussian_noise_has_scale_times_the_columns_spread():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(0, 3.0, 5000), "c": rng.choice(["a", "b"], 5000)})
    X.loc[::10, "x"] = np.nan
    out = GaussianNoise(scale=0.2).sample(X, random_state=0)
    noise = (out["x"] - X["x"]).dropna()
    assert abs(noise.std() - 0.2 * X["x"].std(ddof=0)) < 0.03 and abs(noise.mean()) < 0.03
    pd.testing.assert_series_equal(out["c"], X["c"])  # nominal columns as they were
    assert out["x"].isna().equals(X["x"].isna())  # missing stays missing
    pd.testing.assert_frame_equal(GaussianNoise(scale=0.0).sample(X, random_state=0), X)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("augmenter", [Munge(), GaussianNoise()], ids=["munge", "gaussian"])
def test_bad_input_is_refused_by_name(augmenter):
    name = type(augmenter).__name__
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(TypeError, match=rf"^{name}: parameter X='<sparse csr_matrix .*dense"):
        augmenter.sample(sp.csr_matrix(X), 5)
    with pytest.raises(ValueError, match=rf"^{name}: parameter X=.* 2-d array"):
        augmenter.sample(X.reshape(10, 3, 1), 5)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=rf"^{name}: parameter n_samples={bad!r}"):
            augmenter.sample(X, bad)
    for bad, says in [([3], r"column indices in \[0, 2\]"), ([True, False], "mask of length 3"),
                      (["x"], "column indices")]:
        augmenter.set_params(categorical_features=bad)
        with pytest.raises(ValueError, match=rf"^{name}: parameter categorical_features="
                                             rf".*{says}"):
            augmenter.sample(X, 5)
    augmenter.set_params(categorical_features="from_dtype")
    with pytest.raises(ValueError, match=r"names of columns of X \(not \['nope'\]\)"):
        augmenter.set_params(categorical_features=["nope"]).sample(pd.DataFrame(X), 5)
    augmenter.set_params(categorical_features="from_dtype")


def test_bad_parameters_and_a_single_row():
    X = np.zeros((5, 2))
    with pytest.raises(InvalidParameterError, match="'p' parameter of Munge.*Got 1.5"):
        Munge(p=1.5).sample(X)
    with pytest.raises(InvalidParameterError, match="'s' parameter of Munge.*Got 0"):
        Munge(s=0).sample(X)
    with pytest.raises(InvalidParameterError, match="'scale' parameter of GaussianNoise"):
        GaussianNoise(scale=-1).sample(X)
    with pytest.raises(ValueError, match=r"^Munge: parameter X=.* at least 2 rows"):
        Munge().sample(X[:1])


# -- the distillers ------------------------------------------------------------------------------
STUDENT = MLPStudent(hidden_layer_sizes=(4,), max_epochs=2, batch_size=32)
MAKERS = {
    "kd": lambda **kw: KnowledgeDistiller(LogisticRegression(), STUDENT, **kw),
    "crossfit": lambda **kw: CrossFitDistiller(LogisticRegression(), STUDENT, n_folds=3, **kw),
}


@pytest.fixture
def binary():
    X, y = make_classification(n_samples=90, n_features=4, random_state=0)
    return X[:60], y[:60], X[60:]


@pytest.fixture
def student_calls(monkeypatch):
    """What each skdistill student's fit_objective was given."""
    calls = []
    original = MLPStudent.fit_objective

    def spy(self, X, y, objective, sample_weight=None):
        calls.append({"X": X, "y": y, "targets": np.asarray(objective.targets),
                      "sample_weight": sample_weight})
        return original(self, X, y, objective, sample_weight=sample_weight)

    monkeypatch.setattr(MLPStudent, "fit_objective", spy)
    return calls


class Recording(Munge):
    """Munge that keeps the rows it drew (``drawn``)."""

    def sample(self, X, n_samples=None, random_state=None):
        self.drawn = super().sample(X, n_samples, random_state)
        return self.drawn


@pytest.mark.parametrize("name", MAKERS)
def test_the_student_learns_from_x_the_unlabeled_and_the_synthetic_rows(name, binary,
                                                                       student_calls):
    X, y, X_unlabeled = binary
    model = MAKERS[name](augment="munge", augment_size=0.5, random_state=0)
    model.fit(X, y, X_unlabeled=X_unlabeled)
    assert model.n_augmented_ == 30
    assert len(student_calls[-1]["X"]) == 60 + 30 + 30
    # unlabelled and synthetic rows come after X, labelled by the teacher
    model.set_params(augment_size=1e-3).fit(X, y)
    assert model.n_augmented_ == 1 and len(student_calls[-1]["X"]) == 61
    assert MAKERS[name](random_state=0).fit(X, y).n_augmented_ == 0
    assert len(student_calls[-1]["X"]) == 60


def test_kd_learns_the_synthetic_rows_from_the_teacher_alone(binary, student_calls):
    X, y, _ = binary
    augmenter = Recording()
    model = MAKERS["kd"](augment=augmenter, alpha=0.5, teacher_calibration="temperature",
                         teacher_calibration_cv=3, random_state=0).fit(X, y)
    targets = student_calls[-1]["targets"]
    np.testing.assert_array_equal(targets[60:, 0], -1)  # no label: the teacher's term only
    expected = model.teacher_calibrator_.transform(model.teacher_.predict_proba(augmenter.drawn))
    np.testing.assert_allclose(targets[60:, 1:], expected, rtol=1e-6)
    np.testing.assert_array_equal(student_calls[-1]["X"][60:], augmenter.drawn)


@pytest.mark.parametrize("calibration", [None, "temperature"])
def test_crossfit_labels_the_synthetic_rows_with_the_full_teacher(binary, calibration):
    X, y, _ = binary
    augmenter = Recording(p=1.0)  # no synthetic row is a copy of a labelled one
    model = CrossFitDistiller(LogisticRegression(), DecisionTreeRegressor(), n_folds=3,
                              gamma_alpha=0.05, teacher_calibration=calibration,
                              augment=augmenter, random_state=0).fit(X, y)
    rows = augmenter.drawn
    p = model.teacher_.predict_proba(rows)
    folds = np.mean([t.predict_proba(rows) for t in model.fold_teachers_], axis=0)
    if calibration is not None:
        p = model.teacher_calibrator_.transform(p)
        folds = model.teacher_calibrator_.transform(folds)
    # a full-depth tree reproduces its training targets: teacher_'s, not the fold teachers'
    np.testing.assert_allclose(model.student_.predict(rows), p[:, 1])
    assert not np.allclose(p[:, 1], folds[:, 1])


@pytest.mark.parametrize("name", MAKERS)
def test_random_state_seeds_the_synthetic_rows(name, binary):
    X, y, _ = binary
    fits = []
    for seed in (0, 0, 1):
        augmenter = Recording()
        model = MAKERS[name](augment=augmenter, random_state=seed).fit(X, y)
        fits.append((augmenter.drawn, model.predict_proba(X)))
    np.testing.assert_array_equal(fits[0][0], fits[1][0])
    np.testing.assert_array_equal(fits[0][1], fits[1][1])  # the same student
    assert not np.allclose(fits[0][0], fits[2][0])
    # the stream is not the folds' or the clones' seed drawn from the same random_state
    assert not np.array_equal(fits[0][0], Munge().sample(X, 60, random_state=0))


@pytest.mark.parametrize("name", MAKERS)
def test_synthetic_rows_weigh_one(name, binary, student_calls):
    X, y, X_unlabeled = binary
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    model = MAKERS[name](augment="gaussian", augment_size=0.5, random_state=0)
    model.fit(X, y, sample_weight=sw, X_unlabeled=X_unlabeled)
    np.testing.assert_array_equal(student_calls[-1]["sample_weight"],
                                  np.concatenate([sw, np.ones(30 + 30)]))


def student_pipeline():
    num = make_pipeline(SimpleImputer(), StandardScaler())
    cat = make_pipeline(SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"))
    ct = ColumnTransformer([("num", num, ["age", "hours", "children", "score"]),
                            ("cat", cat, ["workclass", "race", "male"])])
    return make_pipeline(ct, MLPStudent(hidden_layer_sizes=(4,), max_epochs=2))


def forest_teacher():
    enc = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"),
                              ["workclass", "race", "male"])], remainder=SimpleImputer())
    return make_pipeline(enc, RandomForestClassifier(n_estimators=10, random_state=0))


@pytest.mark.parametrize("name", ["kd", "crossfit"])
def test_a_mixed_table_and_a_student_pipeline(name, student_calls):
    X, y = adult_like()
    cls = KnowledgeDistiller if name == "kd" else CrossFitDistiller
    extra = {"n_folds": 3} if name == "crossfit" else {}
    augmenter = Recording(p=0.3)
    model = cls(forest_teacher(), student_pipeline(), augment=augmenter, augment_size=1.5,
                random_state=0, **extra).fit(X, y, X_unlabeled=adult_like(10, seed=1)[0])
    assert model.n_augmented_ == 120
    drawn = augmenter.drawn
    assert isinstance(drawn, pd.DataFrame) and drawn.dtypes.to_dict() == X.dtypes.to_dict()
    # the student's steps were fitted on every row: X, the unlabelled and the synthetic ones
    assert len(student_calls[-1]["X"]) == 80 + 10 + 120
    assert model.predict_proba(X).shape == (80, 2)


def test_routing_synthetic_rows_weigh_one_for_the_student_steps():
    X, y = adult_like()
    X = X[["age", "hours"]].fillna(40.0)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    augmenter = Recording()
    with sklearn.config_context(enable_metadata_routing=True):
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        teacher = LogisticRegression().set_fit_request(sample_weight=True)
        model = KnowledgeDistiller(teacher, make_pipeline(scaler, MLPStudent(max_epochs=1)),
                                   augment=augmenter, augment_size=0.5, random_state=0)
        model.fit(X, y, sample_weight=sw)
    both = np.concatenate([X.to_numpy(), augmenter.drawn.to_numpy()])
    np.testing.assert_allclose(model.student_[0].mean_, np.average(
        both, axis=0, weights=np.concatenate([sw, np.ones(40)])))


def test_grid_search_over_augment_size_and_munges_p(binary):
    X, y, _ = binary
    search = GridSearchCV(MAKERS["kd"](augment=Munge(), random_state=0),
                          {"augment_size": [0.5, 2.0], "augment__p": [0.1, 0.4]}, cv=2)
    search.fit(X, y)
    assert [sorted(p.items()) for p in search.cv_results_["params"]] == [
        [("augment__p", p), ("augment_size", a)] for p in (0.1, 0.4) for a in (0.5, 2.0)]
    best = search.best_estimator_
    assert best.n_augmented_ == int(round(best.augment_size * 60))
    assert best.augment.p == search.best_params_["augment__p"]


@pytest.mark.parametrize("name", MAKERS)
def test_bad_augment_settings_name_the_distiller(name, binary):
    X, y, _ = binary
    cls = type(MAKERS[name]()).__name__
    for bad, says in [({"augment": "mung"}, r"'augment' parameter of " + cls + ".*Got 'mung'"),
                      ({"augment_size": 0}, r"'augment_size' parameter of " + cls + ".*Got 0"),
                      ({"augment_size": -1.0}, r"'augment_size' parameter of " + cls),
                      ({"augment_size": True}, rf"^{cls}: parameter augment_size=True"),
                      ({"augment": Munge(p=2)}, r"'p' parameter of Munge.*Got 2")]:
        with pytest.raises(InvalidParameterError, match=says):
            MAKERS[name](**{"augment": "munge", **bad}).fit(X, y)
    with pytest.raises(ValueError, match=rf"^{cls}: parameter augment='munge' is invalid; "
                                         r"expected None with sparse X"):
        MAKERS[name](augment="munge").fit(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match=rf"^{cls}: parameter augment='gaussian' is invalid; "
                                         r"expected None with X of shape \(60, 2, 2\)"):
        MAKERS[name](augment="gaussian").fit(X.reshape(60, 2, 2), y)

    class Short(Munge):
        def sample(self, X, n_samples=None, random_state=None):
            return super().sample(X, n_samples - 1, random_state)

    with pytest.raises(ValueError, match=rf"^{cls}: parameter augment=Short\(\) is invalid; "
                                         r".*returns n_samples rows"):
        MAKERS[name](augment=Short()).fit(X, y)
