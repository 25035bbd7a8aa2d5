"""The teacher-quality benchmark (Menon et al. 2021) at a tiny size: its rows and its main claim."""
import json

import numpy as np
import pytest

from benchmarks import BENCHMARKS, run
from benchmarks.teacher_quality import PROPERTIES, BayesTeacher
from skdistill.datasets import make_gaussian_mixture

SYNTHETIC_KEYS = {"part", "teacher", "kind", "seed", "teacher_accuracy", "teacher_ece",
                  "teacher_nll", "teacher_ece_train", "teacher_sqdist_train", "student_nll",
                  "student_accuracy", "student_ece", "student_sqdist", "seconds"}
REAL_KEYS = {"part", "method", "depth", "seed", "student_nll", "student_accuracy",
             "student_ece", "seconds"}
CALIBRATED_KEYS = REAL_KEYS | {"teacher_nll", "teacher_accuracy", "teacher_ece",
                               "teacher_oof_ece", "teacher_temperature"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("teacher_quality") / "rows.json"
    assert run("teacher_quality", ["--quick", "--part", "synthetic", "digits",
                                   "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_teacher_quality_is_a_registered_benchmark():
    assert BENCHMARKS["teacher_quality"] == "teacher_quality"


def test_bayes_teacher_is_the_generators_posterior_and_tempering_keeps_its_classes():
    X, _, proba, params = make_gaussian_mixture(200, n_classes=3, n_features=4,
                                                covariance="per_class", random_state=1,
                                                return_params=True)
    np.testing.assert_allclose(BayesTeacher(params).fit(X).predict_proba(X), proba, atol=1e-10)
    hot = BayesTeacher(params, temperature=3.0).fit(X).predict_proba(X)
    assert np.array_equal(hot.argmax(axis=1), proba.argmax(axis=1))
    assert hot.max(axis=1).mean() < proba.max(axis=1).mean()


def test_quick_run_rows_have_every_key(quick):
    synthetic = [r for r in quick["rows"] if r["part"] == "synthetic"]
    digits = [r for r in quick["rows"] if r["part"] == "digits"]
    assert {r["teacher"] for r in synthetic} >= {"p*", "p* at T=3", "labels only",
                                                 "logistic regression", "kNN k=5",
                                                 "MC dropout MLP 128-128"}
    assert all(set(r) == SYNTHETIC_KEYS for r in synthetic)
    assert [r["method"] for r in digits] == ["labels only", "none", "temperature", "isotonic"]
    assert set(digits[0]) == REAL_KEYS and all(set(r) == CALIBRATED_KEYS for r in digits[1:])
    assert set(quick["synthetic_spearman"]) == set(PROPERTIES)
    assert set(quick["digits_gap_closed"]["6"]) == {"temperature", "isotonic"}


def test_bayes_probabilities_distil_better_than_strongly_distorted_ones(quick):
    by_teacher = {r["teacher"]: r for r in quick["rows"] if r["part"] == "synthetic"}
    exact, hot, cold = by_teacher["p*"], by_teacher["p* at T=3"], by_teacher["p* at T=0.5"]
    # Same predicted classes, so the same teacher accuracy: only the probabilities differ.
    assert exact["teacher_accuracy"] == hot["teacher_accuracy"] == cold["teacher_accuracy"]
    assert exact["teacher_sqdist_train"] < 1e-20
    assert exact["student_nll"] < hot["student_nll"] - 0.05
    assert exact["student_nll"] < cold["student_nll"]
    assert exact["student_sqdist"] < min(hot["student_sqdist"], cold["student_sqdist"])


def test_calibrating_an_under_confident_forest_lowers_its_students_nll(quick):
    digits = {r["method"]: r for r in quick["rows"] if r["part"] == "digits"}
    assert digits["temperature"]["teacher_temperature"] < 1  # the forest is under-confident
    assert digits["temperature"]["student_nll"] < digits["none"]["student_nll"]
    assert digits["temperature"]["teacher_ece"] < digits["none"]["teacher_ece"]


def test_missing_heloc_is_skipped_with_a_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKDISTILL_SYSTEM_DATA", "0")
    assert run("teacher_quality", ["--quick", "--part", "heloc",
                                   "--data-home", str(tmp_path)]) == 0
    assert "teacher_quality: skipping heloc" in capsys.readouterr().out
