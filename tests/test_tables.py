"""Tables in, one small model out: DataFrames reach each side as it needs them, a student
Pipeline, refusals that name who refused, metadata routing, keep_teachers."""
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from skdistill import (CrossFitDistiller, EnsembleDistiller, GPEDDistiller, KnowledgeDistiller,
                       MLPStudent)

FAST = dict(hidden_layer_sizes=(8,), max_epochs=3, batch_size=32)
DISTILLERS = {"kd": (KnowledgeDistiller, {}), "crossfit": (CrossFitDistiller, {"n_folds": 3})}


def mixed_frame(n=120, seed=0):
    """Numeric, string, category and bool columns, NaN in a numeric and a categorical one."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "edu": rng.choice(["HS", "BSc", "MSc"], n),
        "grade": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "flag": rng.random(n) > 0.5,
    })
    X.loc[::7, "age"] = np.nan
    X.loc[::11, "grade"] = np.nan
    y = ((X["age"].fillna(40) > 40) ^ (X["edu"] == "HS")).to_numpy().astype(int)
    return X, y


def student_pipeline(**mlp):
    num = make_pipeline(SimpleImputer(), StandardScaler())
    cat = make_pipeline(SimpleImputer(strategy="most_frequent"),
                        OneHotEncoder(handle_unknown="ignore"))
    ct = ColumnTransformer([("num", num, ["age"]), ("cat", cat, ["edu", "grade", "flag"])])
    return make_pipeline(ct, MLPStudent(**{**FAST, **mlp}))


def hgb_teacher():
    """HGB with native categoricals (``grade`` as a category, ``edu`` ordinal-encoded)."""
    enc = ColumnTransformer(
        [("ord", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
          ["edu"])], remainder="passthrough", verbose_feature_names_out=False)
    return make_pipeline(enc.set_output(transform="pandas"),
                         HistGradientBoostingClassifier(categorical_features=["edu", "grade"],
                                                        max_iter=10))


def make(name, teacher=None, student=None, **kw):
    cls, defaults = DISTILLERS[name]
    return cls(hgb_teacher() if teacher is None else teacher,
               student_pipeline() if student is None else student, random_state=0,
               **{**defaults, **kw})


@pytest.mark.parametrize("name", DISTILLERS)
def test_mixed_frame_fit_predict_score(name):
    X, y = mixed_frame()
    model = make(name).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert set(model.predict(X)) <= {0, 1}
    assert 0 <= model.score(X, y) <= 1
    assert list(model.feature_names_in_) == list(X.columns) and model.n_features_in_ == 4
    assert isinstance(model.student_, Pipeline)
    # the fitted student pipeline predicts from the raw table by itself
    np.testing.assert_array_equal(model.student_.predict_proba(X), proba)
    # the teacher got the table itself: grade kept its category dtype (native categorical)
    hgb = (model.teacher_ if name == "kd" else model.fold_teachers_[0])[-1]
    assert list(hgb.is_categorical_) == [True, False, True, False]


@pytest.mark.parametrize("name", DISTILLERS)
def test_native_categorical_teacher_gets_the_frame(name):
    X, y = mixed_frame()
    X = X.drop(columns="edu")  # HGB(from_dtype) itself takes category, bool, NaN
    teacher = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=10)
    student = make_pipeline(
        ColumnTransformer([("num", SimpleImputer(), ["age", "flag"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["grade"])]),
        MLPStudent(**FAST))
    model = make(name, teacher, student).fit(X, y)
    fitted = model.teacher_ if name == "kd" else model.fold_teachers_[0]
    assert list(fitted.is_categorical_) == [False, True, False]
    assert model.predict_proba(X).shape == (len(X), 2)


def test_grid_search_over_a_student_step():
    X, y = mixed_frame()
    search = GridSearchCV(make("kd"), {"student__mlpstudent__hidden_layer_sizes": [(4,), (8,)]},
                          cv=2).fit(X, y)
    assert search.best_estimator_.student_[-1].hidden_layer_sizes_ in ([4], [8], (4,), (8,))
    assert search.predict_proba(X).shape == (len(X), 2)


@pytest.mark.parametrize("name", DISTILLERS)
def test_pickle_round_trip(name):
    X, y = mixed_frame()
    model = make(name).fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("name", DISTILLERS)
def test_unlabeled_frame(name):
    X, y = mixed_frame()
    X_u, _ = mixed_frame(40, seed=1)
    X_u["grade"] = X_u["grade"].cat.add_categories(["d"])  # other categories: kept categorical
    model = make(name).fit(X, y, X_unlabeled=X_u)
    assert model.predict_proba(X_u).shape == (40, 2)
    # the student's transformers saw the unlabeled rows too
    assert model.student_[0].n_features_in_ == 4
    with pytest.raises(ValueError, match=rf"{DISTILLERS[name][0].__name__}: parameter "
                                         r"X_unlabeled=.* columns of X, in the same order"):
        make(name).fit(X, y, X_unlabeled=X_u[X_u.columns[::-1]])


@pytest.mark.parametrize("name", DISTILLERS)
def test_reordered_or_missing_columns_at_predict(name):
    X, y = mixed_frame()
    model = make(name).fit(X, y)
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict_proba(X[X.columns[::-1]])
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(X.drop(columns="flag"))


def test_numeric_frame_and_arrays_as_before():
    X, y = mixed_frame()
    X = X[["age"]].fillna(0.0).assign(b=np.arange(len(X)) % 3)
    model = KnowledgeDistiller(RandomForestClassifier(n_estimators=5), MLPStudent(**FAST),
                               random_state=0).fit(X, y)
    assert list(model.feature_names_in_) == ["age", "b"]
    assert list(model.student_.feature_names_in_) == ["age", "b"]  # the frame itself
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(X[["b", "age"]])


@pytest.mark.parametrize("name", DISTILLERS)
def test_refusal_names_the_teacher(name):
    X, y = mixed_frame()
    X = X.drop(columns="age")
    teacher = make_pipeline(OneHotEncoder(sparse_output=True),
                            HistGradientBoostingClassifier(max_iter=5))
    who = "teacher Pipeline" if name == "kd" else "fold teacher Pipeline"
    with pytest.raises(TypeError, match=rf"^{DISTILLERS[name][0].__name__}: the {who}'s step "
                                        r"'histgradientboostingclassifier' "
                                        r"\(HistGradientBoostingClassifier\) refused X: Sparse"):
        make(name, teacher, student_pipeline()).fit(X, y)


@pytest.mark.parametrize("name", DISTILLERS)
def test_refusal_names_the_student(name):
    X, y = mixed_frame()
    with pytest.raises(ValueError, match=rf"^{DISTILLERS[name][0].__name__}: the student "
                                         "MLPStudent refused X: .*string"):
        make(name, student=MLPStudent(**FAST)).fit(X, y)


def test_refusal_names_the_student_step():
    X, y = mixed_frame()
    student = make_pipeline(StandardScaler(), MLPStudent(**FAST))
    with pytest.raises(ValueError, match=r"^KnowledgeDistiller: the student step "
                                         r"'standardscaler' \(StandardScaler\) refused X"):
        make("kd", student=student).fit(X, y)


@pytest.mark.parametrize("name", DISTILLERS)
def test_pipeline_last_step_must_be_a_student(name):
    X, y = mixed_frame()
    with pytest.raises(TypeError, match=rf"(?s){DISTILLERS[name][0].__name__}: parameter "
                                        r"student=Pipeline.* is invalid.*Pipeline ending"):
        make(name, student=make_pipeline(StandardScaler(), LogisticRegression())).fit(X, y)


def test_crossfit_regressor_pipeline_student():
    from sklearn.ensemble import RandomForestRegressor

    X, y = mixed_frame()
    student = make_pipeline(clone(student_pipeline()[0]), RandomForestRegressor(n_estimators=5))
    model = make("crossfit", student=student).fit(X, y)
    assert model.predict_proba(X).shape == (len(X), 2)


def test_seed_reaches_the_last_step():
    X, y = mixed_frame()
    a = make("kd").fit(X, y).predict_proba(X)
    b = make("kd").fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert make("kd").fit(X, y).student_[-1].random_state is not None


def test_verbose_and_validation_fraction_reach_the_last_step(capsys):
    X, y = mixed_frame()
    make("kd", verbose=1).fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    with pytest.raises(ValueError, match="validation_fraction"):
        make("kd", student=student_pipeline(validation_fraction=0.999)).fit(X, y)


# -- metadata routing -------------------------------------------------------------------------
class Recorder(ClassifierMixin, BaseEstimator):
    """A teacher that records the weights its fit got (and predicts the class frequencies)."""

    def fit(self, X, y, sample_weight=None):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.sample_weight_ = sample_weight
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))


def routed_student():
    """The student pipeline, its scaler told not to take the weights (routing on)."""
    pipe = student_pipeline()
    pipe.set_params(columntransformer__num__standardscaler=StandardScaler().set_fit_request(
        sample_weight=False))
    return pipe


def weights(n):
    return np.random.default_rng(0).uniform(0.5, 2.0, n)


@pytest.mark.parametrize("name", DISTILLERS)
def test_routing_teacher_request_false_is_honoured(name):
    X, y = mixed_frame()
    sw = weights(len(X))
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("error")
        model = make(name, Recorder().set_fit_request(sample_weight=False),
                     routed_student()).fit(X, y, sample_weight=sw)
    fitted = [model.teacher_] + list(getattr(model, "fold_teachers_", []))
    assert all(t.sample_weight_ is None for t in fitted)


@pytest.mark.parametrize("name", DISTILLERS)
def test_routing_teacher_request_true_gets_its_rows(name):
    X, y = mixed_frame()
    sw = weights(len(X))
    with sklearn.config_context(enable_metadata_routing=True):
        model = make(name, Recorder().set_fit_request(sample_weight=True),
                     routed_student()).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(model.teacher_.sample_weight_, sw)
    if name == "crossfit":
        got = np.sort(np.concatenate([t.sample_weight_ for t in model.fold_teachers_]))
        np.testing.assert_array_equal(got, np.sort(np.concatenate([sw, sw])))


def test_routing_unset_teacher_request_is_an_error():
    X, y = mixed_frame()
    with sklearn.config_context(enable_metadata_routing=True):
        with pytest.raises(sklearn.exceptions.UnsetMetadataPassedError):
            make("kd", Recorder(), routed_student()).fit(X, y, sample_weight=weights(len(X)))


@pytest.mark.parametrize("name", DISTILLERS)
def test_routing_pipeline_teacher_and_student_steps_get_their_weights(name):
    X, y = mixed_frame()
    X = X[["age"]].fillna(0.0).assign(b=np.arange(len(X)) % 5)
    sw = weights(len(X))
    with sklearn.config_context(enable_metadata_routing=True):
        teacher = make_pipeline(StandardScaler().set_fit_request(sample_weight=False),
                                LogisticRegression().set_fit_request(sample_weight=True))
        scaler = StandardScaler().set_fit_request(sample_weight=True)
        student = make_pipeline(scaler, MLPStudent(**FAST))
        model = make(name, teacher, student, refit_teacher=True) if name == "crossfit" else \
            make(name, teacher, student)
        model.fit(X, y, sample_weight=sw)
        expected = clone(teacher).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(model.teacher_[-1].coef_, expected[-1].coef_, rtol=1e-6)
    np.testing.assert_allclose(model.student_[0].mean_,
                               np.average(X.to_numpy(), axis=0, weights=sw))


def test_routing_unlabeled_rows_weigh_one_for_the_student_steps():
    X, y = mixed_frame()
    X = X[["age"]].fillna(0.0)
    X_u = X.iloc[:30] + 100.0
    sw = weights(len(X))
    with sklearn.config_context(enable_metadata_routing=True):
        student = make_pipeline(StandardScaler().set_fit_request(sample_weight=True),
                                MLPStudent(**FAST))
        model = make("kd", Recorder().set_fit_request(sample_weight=True), student).fit(
            X, y, sample_weight=sw, X_unlabeled=X_u)
    both = np.concatenate([X.to_numpy()[:, 0], X_u.to_numpy()[:, 0]])
    np.testing.assert_allclose(model.student_[0].mean_[0],
                               np.average(both, weights=np.concatenate([sw, np.ones(30)])))


def test_routing_off_is_as_before():
    X, y = mixed_frame()
    sw = weights(len(X))
    from sklearn.neighbors import KNeighborsClassifier

    teacher = make_pipeline(hgb_teacher()[0], LogisticRegression())
    with pytest.warns(UserWarning, match="KNeighborsClassifier's fit takes no sample_weight"):
        make("kd", KNeighborsClassifier(), make_pipeline(StandardScaler(), MLPStudent(**FAST))
             ).fit(X[["age"]].fillna(0), y, sample_weight=sw)
    model = make("kd", Recorder()).fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(model.teacher_.sample_weight_, sw)
    with pytest.raises(ValueError, match="only supported if enable_metadata_routing=True"):
        make("kd", teacher).fit(X, y, groups=np.zeros(len(X)))


def test_get_metadata_routing():
    with sklearn.config_context(enable_metadata_routing=True):
        model = make("kd", Recorder().set_fit_request(sample_weight=True), routed_student())
        routing = model.get_metadata_routing()
    assert "teacher" in str(routing) and "student" in str(routing)


# -- keep_teachers -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", DISTILLERS)
def test_keep_teachers_false_pickles_small(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    teacher = RandomForestClassifier(n_estimators=300)
    cls, kw = DISTILLERS[name]
    kw = {"n_folds": 2} if name == "crossfit" else {}
    sizes = {}
    for keep in (True, False):
        model = cls(teacher, MLPStudent(**FAST), keep_teachers=keep, random_state=0,
                    **kw).fit(X, y)
        sizes[keep] = len(pickle.dumps(model))
    student = len(pickle.dumps(model.student_))
    print(f"{name}: keep_teachers=True {sizes[True]} B, False {sizes[False]} B, "
          f"student_ {student} B")
    assert sizes[False] <= 2 * student < sizes[True]
    assert model.get_params()["keep_teachers"] is False
    assert clone(model).keep_teachers is False
    for attr in ("teacher_", "fold_teachers_", "oof_proba_"):
        with pytest.raises(AttributeError, match=rf"{attr} was not kept \(keep_teachers=False"):
            getattr(model, attr)
    assert model.predict_proba(X).shape == (200, 2)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    # a refit with keep_teachers=True has them again
    model.set_params(keep_teachers=True, teacher=RandomForestClassifier(n_estimators=3))
    model.fit(X[:60], y[:60])
    assert hasattr(model, "teacher_")


def test_keep_teachers_is_validated():
    X, y = mixed_frame()
    with pytest.raises(ValueError, match="keep_teachers"):
        make("kd", keep_teachers="no").fit(X, y)


# -- GPED and Ensemble need numbers --------------------------------------------------------------
def test_gped_and_ensemble_refuse_strings_by_name():
    from skdistill import DeepEnsembleTeacher, SGLDTeacher

    X, y = mixed_frame(40)
    X = X.fillna({"age": 0.0})
    for model in (GPEDDistiller(SGLDTeacher(hidden_layer_sizes=(4,)),
                                MLPStudent(hidden_layer_sizes=(4,))),
                  EnsembleDistiller(DeepEnsembleTeacher(MLPStudent(**FAST), n_members=2),
                                    MLPStudent(**FAST))):
        with pytest.raises(ValueError, match=rf"^{type(model).__name__}: .*string.*"
                                             rf"\({type(model).__name__} needs numeric X"):
            model.fit(X, y)


def test_gped_and_ensemble_refuse_a_pipeline_student_by_name():
    from skdistill import DeepEnsembleTeacher, SGLDTeacher

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    student = make_pipeline(StandardScaler(), MLPStudent(**FAST))
    for model in (GPEDDistiller(SGLDTeacher(hidden_layer_sizes=(4,)), student),
                  EnsembleDistiller(DeepEnsembleTeacher(MLPStudent(**FAST), n_members=2),
                                    student, method="kd")):
        name = type(model).__name__
        with pytest.raises(TypeError, match=rf"(?s)^{name}: parameter student=.*Pipeline.*"
                                            rf"in a Pipeline before the {name} instead"):
            model.fit(X, y)
