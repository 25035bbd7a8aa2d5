"""Conformal prediction sets on a distilled model with MAPIE (the ``conformal`` extra).

MAPIE's ``SplitConformalClassifier(prefit=True)`` takes a fitted distiller, or its fitted
``student_``, as it is: it reads ``classes_`` and ``predict_proba``. Split conformal prediction
guarantees marginal coverage: with ``n`` exchangeable calibration rows and the LAC score, a new
row's label falls in its set with probability between ``level`` and ``level + 1 / (n + 1)``.
Each test checks that window on held-out rows, widened by three standard deviations of the
coverage measured on a finite test set after one fixed calibration set, and checks that the
sets are informative (a coverage check alone cannot fail: conformal coverage holds for any
score, even one computed from the wrong column).
"""
import configparser
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from conftest import skip_or_fail
from skdistill import (CrossFitDistiller, DeepEnsembleTeacher, EnsembleDistiller,
                       KnowledgeDistiller, LatentBEStudent, MLPStudent)

ROOT = Path(__file__).resolve().parents[1]
LEVELS = [0.8, 0.9, 0.95]
N_TRAIN, N_CAL, N_TEST = 600, 500, 1500
# string labels: MAPIE must map them through classes_ to predict_proba's columns
LABELS = np.array(["setosa", "alpha", "zulu", "mike"])


def _splitconformal():
    """MAPIE's ``SplitConformalClassifier``, or skip (fail under ``CI=true``) without MAPIE."""
    try:
        from mapie.classification import SplitConformalClassifier
    except ImportError:
        skip_or_fail("MAPIE is not installed (pip install 'skdistill[conformal]')")
    return SplitConformalClassifier


def coverage_window(level, n_cal, n_test, sigmas=3.0):
    """The held-out coverage a correct split-conformal set may show, at ``sigmas`` sigmas.

    The guarantee bounds the expected coverage by ``[level, level + 1 / (n_cal + 1)]``. After
    one fixed calibration set the coverage is Beta-distributed (variance about
    ``level (1 - level) / (n_cal + 2)``), and the test rows add a binomial variance
    ``level (1 - level) / n_test``.
    """
    sd = math.sqrt(level * (1 - level) * (1 / (n_cal + 2) + 1 / n_test))
    return level - sigmas * sd, level + 1 / (n_cal + 1) + sigmas * sd


def _data(as_frame=False):
    X, y = make_classification(N_TRAIN + N_CAL + N_TEST, n_features=8, n_informative=5,
                               n_classes=4, n_clusters_per_class=1, class_sep=1.0,
                               flip_y=0.02, random_state=0)
    if as_frame:
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        X["bucket"] = pd.Categorical(np.where(X["x0"] > 0, "high", "low"))
        split = [X.iloc[:N_TRAIN], X.iloc[N_TRAIN:N_TRAIN + N_CAL], X.iloc[N_TRAIN + N_CAL:]]
    else:
        split = [X[:N_TRAIN], X[N_TRAIN:N_TRAIN + N_CAL], X[N_TRAIN + N_CAL:]]
    y = LABELS[y]
    return split, [y[:N_TRAIN], y[N_TRAIN:N_TRAIN + N_CAL], y[N_TRAIN + N_CAL:]]


def _student(**params):
    return MLPStudent(**{"hidden_layer_sizes": (32,), "max_epochs": 30, "lr": 1e-2,
                         "random_state": 0, **params})


@pytest.fixture(scope="module")
def data():
    _splitconformal()  # skip before fitting anything
    return _data()


@pytest.fixture(scope="module")
def models(data):
    (X_train, _, _), (y_train, _, _) = data
    forest = RandomForestClassifier(n_estimators=50, random_state=0)
    kd = KnowledgeDistiller(forest, _student(), random_state=0).fit(X_train, y_train)
    crossfit = CrossFitDistiller(forest, _student(), n_folds=3,
                                 random_state=0).fit(X_train, y_train)
    ensemble = EnsembleDistiller(
        DeepEnsembleTeacher(_student(), n_members=2),
        LatentBEStudent(n_members=2, hidden_layer_sizes=(32,), max_epochs=30, lr=1e-2),
        random_state=0).fit(X_train, y_train)
    # the same recipe with a student that barely trained: its sets must be larger
    weak = KnowledgeDistiller(forest, _student(max_epochs=1, lr=1e-4),
                              random_state=0).fit(X_train, y_train)
    return {"KnowledgeDistiller": kd, "KnowledgeDistiller.student_": kd.student_,
            "CrossFitDistiller": crossfit, "CrossFitDistiller.student_": crossfit.student_,
            "EnsembleDistiller": ensemble, "EnsembleDistiller.student_": ensemble.student_,
            "weak": weak}


def conformal_sets(model, data, level=LEVELS, score="lac", **predict_params):
    """Conformalize a fitted model on the calibration rows; sets of the test rows.

    Returns the sets, shape ``(n_test, n_classes, n_levels)``, and each test row's label
    position in ``model.classes_``.
    """
    (_, X_cal, X_test), (_, y_cal, y_test) = data
    conformal = _splitconformal()(model, confidence_level=level, conformity_score=score,
                                  prefit=True, random_state=0)
    conformal.conformalize(X_cal, y_cal)
    _, sets = conformal.predict_set(X_test, **predict_params)
    position = np.searchsorted(model.classes_, y_test)
    assert np.array_equal(model.classes_[position], y_test)
    return sets, position


def coverage(sets, position):
    return sets[np.arange(len(position)), position].mean(axis=0)


def check_informative(model, sets, X_test):
    """Sets grow with the level, and every non-empty set holds the model's own prediction."""
    sizes = sets.sum(axis=1)
    assert np.all(np.diff(sizes, axis=1) >= 0), "a set shrank as the level rose"
    predicted = np.searchsorted(model.classes_, model.predict(X_test))
    holds = sets[np.arange(len(predicted)), predicted]
    assert np.all(holds | (sizes == 0)), "a set misses the label the model predicts"
    return sizes.mean(axis=0)


NAMES = ["KnowledgeDistiller", "KnowledgeDistiller.student_", "CrossFitDistiller",
         "CrossFitDistiller.student_", "EnsembleDistiller", "EnsembleDistiller.student_"]


@pytest.mark.parametrize("name", NAMES)
def test_lac_sets_cover_held_out_rows_within_the_guarantee(name, models, data):
    model = models[name]
    sets, position = conformal_sets(model, data)
    for level, covered in zip(LEVELS, coverage(sets, position)):
        low, high = coverage_window(level, N_CAL, N_TEST)
        assert low <= covered <= high, f"{name}: coverage {covered:.3f} at level {level}"
    sizes = check_informative(model, sets, data[0][2])
    assert sizes[-1] >= 1, f"{name}: mean set size {sizes}"
    assert sizes[-1] < 2.5, f"{name}: mean set size {sizes} of 4 classes"


@pytest.mark.parametrize("name", ["KnowledgeDistiller", "CrossFitDistiller",
                                  "EnsembleDistiller"])
def test_a_distiller_and_its_student_give_the_same_sets(name, models, data):
    distiller_sets, _ = conformal_sets(models[name], data)
    student_sets, _ = conformal_sets(models[f"{name}.student_"], data)
    assert np.array_equal(distiller_sets, student_sets)


def test_a_better_student_gives_smaller_sets(models, data):
    sizes = {}
    for name in ["KnowledgeDistiller", "weak"]:
        sets, position = conformal_sets(models[name], data)
        for level, covered in zip(LEVELS, coverage(sets, position)):
            low, high = coverage_window(level, N_CAL, N_TEST)
            assert low <= covered <= high, f"{name}: coverage {covered:.3f} at level {level}"
        sizes[name] = check_informative(models[name], sets, data[0][2])

    assert np.all(sizes["KnowledgeDistiller"] + 0.3 < sizes["weak"]), sizes


def test_aps_sets_cover_at_least_the_level(models, data):
    # MAPIE's default APS sets keep the last label (include_last_label=True): conservative,
    # so only the lower bound holds; the randomized sets meet both.
    model = models["KnowledgeDistiller"]
    for params in [{}, {"conformity_score_params": {"include_last_label": "randomized"}}]:
        sets, position = conformal_sets(model, data, score="aps", **params)
        for level, covered in zip(LEVELS, coverage(sets, position)):
            low, high = coverage_window(level, N_CAL, N_TEST)
            assert low <= covered, f"APS {params}: coverage {covered:.3f} at level {level}"
            if params:
                assert covered <= high, f"randomized APS: coverage {covered:.3f} at {level}"


class _MisorderedColumns(ClassifierMixin, BaseEstimator):
    """A fitted model whose predict_proba columns are rolled against its classes_."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name):
        if name.endswith("_") and not name.startswith("__"):
            return getattr(self.__dict__["model"], name)
        raise AttributeError(name)

    def predict(self, X):
        return self.model.predict(X)

    def predict_proba(self, X):
        return np.roll(self.model.predict_proba(X), 1, axis=1)


def test_the_checks_catch_probabilities_misordered_against_classes(models, data):
    # Coverage alone holds whatever the score; the set checks are what catch a bad wiring.
    model = _MisorderedColumns(models["KnowledgeDistiller"])
    sets, position = conformal_sets(model, data)
    low, _ = coverage_window(LEVELS[0], N_CAL, N_TEST)
    assert coverage(sets, position)[0] >= low
    with pytest.raises(AssertionError, match="misses the label the model predicts"):
        check_informative(model, sets, data[0][2])
    assert sets.sum(axis=1).mean(axis=0)[-1] > 2.5


def test_a_pipeline_student_of_a_dataframe_is_conformalized_on_the_raw_table():
    # MAPIE probes a prefit model with a row of zeros in a NumPy array; a distiller whose
    # student reads named, categorical columns cannot answer it, its student_ Pipeline can
    # (MAPIE probes a Pipeline's last step), and predicts the same probabilities.
    _splitconformal()
    data = _data(as_frame=True)
    (X_train, _, X_test), (y_train, _, _) = data
    numeric = [c for c in X_train.columns if c != "bucket"]
    student = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric),
                           ("cat", OneHotEncoder(), ["bucket"])]),
        _student(max_epochs=20))
    teacher = HistGradientBoostingClassifier(max_iter=30, categorical_features="from_dtype",
                                             random_state=0)
    model = KnowledgeDistiller(teacher, student, random_state=0).fit(X_train, y_train)
    np.testing.assert_allclose(model.student_.predict_proba(X_test),
                               model.predict_proba(X_test))
    sets, position = conformal_sets(model.student_, data)
    for level, covered in zip(LEVELS, coverage(sets, position)):
        low, high = coverage_window(level, N_CAL, N_TEST)
        assert low <= covered <= high, f"coverage {covered:.3f} at level {level}"
    check_informative(model.student_, sets, X_test)


def test_the_recipe_of_the_user_guide_runs_and_covers(capsys):
    _splitconformal()
    page = (ROOT / "doc" / "conformal.md").read_text()
    recipe = re.search(r"```python\n(.*?)```", page, flags=re.S).group(1)
    exec(compile(recipe, "conformal.md", "exec"), {"__name__": "__main__"})
    printed = re.fullmatch(r"coverage (\S+), mean set size (\S+)\n", capsys.readouterr().out)
    # 449 calibration and 450 test rows at level 0.9
    low, high = coverage_window(0.9, 449, 450)
    assert low <= float(printed.group(1)) <= high and 0.5 < float(printed.group(2)) < 1.5


def test_the_conformal_extra_is_declared_pinned_and_installed_by_make_test():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extra = config["options.extras_require"]["conformal"].split()
    assert extra == ["mapie>=1.0"]
    assert re.search(r"^mapie==1\.\d+\.\d+$", (ROOT / "constraints.txt").read_text(),
                     flags=re.M | re.I)
    makefile = (ROOT / "Makefile").read_text()
    installs = re.findall(r'pip install .*-e "\.\[([a-z,]+)\]"', makefile)
    assert installs and all("conformal" in extras.split(",") for extras in installs), installs
