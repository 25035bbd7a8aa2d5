"""The Menon et al. benchmarks at a tiny size: their rows, and their data and teachers."""
import json

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks import run
from benchmarks.menon_ranking import (METHODS, _StandardisedBayes, bayes_proba, labelled_rows,
                                      load_data, main)

RANKING_KEYS = {"dataset", "n_labels", "n_labelled", "n_unlabeled", "seed", "method", "lr",
                "auc", "steps", "seconds"}


@pytest.fixture(scope="module")
def ranking_quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("menon_ranking") / "rows.json"
    assert run("menon", ["ranking", "--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_ranking_quick_run_has_every_method_size_and_seed(ranking_quick):
    rows = ranking_quick["rows"]
    assert all(set(r) == RANKING_KEYS for r in rows)
    assert {(r["n_labels"], r["seed"], r["method"]) for r in rows} == {
        (n, seed, method) for n in ("60", "all") for seed in (0, 1) for method in METHODS}
    assert all(0 <= r["auc"] <= 1 for r in rows)
    by_size = {r["n_labels"]: (r["n_labelled"], r["n_unlabeled"]) for r in rows}
    assert by_size["60"] == (60, 240) and by_size["all"] == (300, 0)
    summary = ranking_quick["summary"]
    assert len(summary) == 2 * len(METHODS) and all(s["n_seeds"] == 2 for s in summary)
    first = [r["auc"] for r in rows if (r["n_labels"], r["method"]) == ("60", METHODS[0])]
    np.testing.assert_allclose(summary[0]["mean"], np.mean(first))
    np.testing.assert_allclose(summary[0]["var"], np.var(first, ddof=1))
    assert 0.5 < ranking_quick["bayes_test_auc"]["synthetic"] < 1


def test_ranking_students_train_for_about_the_same_number_of_steps(ranking_quick):
    # equal steps: epochs are set from the rows each student trains on (within one epoch)
    steps = {(r["n_labels"], r["method"]): r["steps"] for r in ranking_quick["rows"]
             if r["method"] != "teacher (HGB)"}
    assert all(15 <= s <= 30 for s in steps.values()), steps


def test_ranking_bayes_teacher_sees_the_raw_rows_and_labels_are_stratified():
    class Args:
        synthetic_pool, n_val, n_test = 400, 100, 300

    data = load_data("synthetic", Args, None)
    X, y = data["pool"]
    raw = data["scaler"].inverse_transform(X)
    teacher = _StandardisedBayes(data["scaler"]).fit(X, y)
    np.testing.assert_allclose(teacher.predict_proba(X)[:, 1], bayes_proba(raw))
    rows = labelled_rows(y, "100", seed=3)
    assert len(rows) == 100 and abs(y[rows].mean() - y.mean()) < 0.02
    assert not np.array_equal(rows, labelled_rows(y, "100", seed=4))
    assert np.array_equal(labelled_rows(y, "all", seed=0), np.arange(len(y)))


def test_ranking_refuses_a_bad_labelled_size(capsys):
    with pytest.raises(SystemExit):
        main(["--labels", "many"])
    assert "--labels takes positive ints or 'all'" in capsys.readouterr().err


# -- teacher-corrected sampled softmax (benchmarks/menon_softmax.py) ---------------------------

@pytest.fixture(scope="module")
def softmax_quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("menon_softmax") / "rows.json"
    assert run("menon", ["softmax", "--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_softmax_quick_run_has_every_method_teacher_and_timing_row(softmax_quick):
    from benchmarks.menon_softmax import FULL_METHODS, NO_TEACHER, SAMPLED_METHODS

    rows = softmax_quick["rows"]
    tested = {(r["method"], r["sampler"], r["teacher"]) for r in rows if r.get("stage") == "test"}
    # a student whose loss and sampler never read the teacher is trained once, teacher "none"
    expected = {(method, None, "none" if method in NO_TEACHER else teacher)
                for method in FULL_METHODS for teacher in ("p*", "trained")}
    expected |= {(method, sampler, teacher) for method in SAMPLED_METHODS
                 for sampler in ("uniform", "teacher") for teacher in ("p*", "trained")
                 if method not in NO_TEACHER or sampler == "teacher"}
    expected |= {(method, "uniform", "none") for method in NO_TEACHER & set(SAMPLED_METHODS)}
    assert tested == expected
    assert set(softmax_quick["chosen_lr"]) == {*FULL_METHODS, *(
        f"{method} (q={sampler})" for method in SAMPLED_METHODS
        for sampler in ("uniform", "teacher"))}
    for row in rows:
        if row.get("stage") == "test":
            assert 0 <= row["p1"] <= 1 and 0 <= row["p5"] <= 0.2 and row["nll"] > 0
    timing = [r for r in rows if r.get("part") == "timing"]
    assert {(r["n_classes"], r["m"]) for r in timing} == {(100, 64), (100, None), (300, 64)}
    assert all(r["epoch_seconds"] > 0 and r["step_optimizer_ms"] > 0 for r in timing)


def test_softmax_latent_model_labels_are_drawn_from_p_star():
    from benchmarks.menon_softmax import LatentModel

    latent = LatentModel(6, beta=2.0)
    X, y = latent.sample(20000, np.random.default_rng(0))
    frequency = np.bincount(y, minlength=6) / len(y)
    np.testing.assert_allclose(frequency, np.exp(latent.log_proba(X)).mean(0), atol=0.01)


def test_softmax_teachers_give_the_top_k_of_their_probabilities():
    from benchmarks.menon_softmax import BayesTeacher, LatentModel, TrainedTeacher

    latent = LatentModel(30)
    X, y = latent.sample(300, np.random.default_rng(0))
    y = np.where(y == 3, 4, y)  # a class that y lacks: its column is dropped
    teacher = BayesTeacher(latent, keep=5).fit(X, y)
    proba = teacher.predict_proba(X[:50])
    assert sp.issparse(proba) and proba.shape == (50, len(teacher.classes_))
    assert teacher.predict_proba(X[:50]) is proba  # cached
    full = np.exp(latent.log_proba(X[:50]))[:, teacher.classes_]
    dense = proba.toarray()
    assert ((dense > 0).sum(1) == 5).all()
    np.testing.assert_allclose(np.sort(dense, 1)[:, -5:], np.sort(full, 1)[:, -5:])

    class Fitted:
        classes_ = np.arange(30)

        def predict_proba(self, X):
            return np.exp(latent.log_proba(X))

    trained = TrainedTeacher(Fitted(), keep=5).fit(X, y)
    np.testing.assert_allclose(trained.predict_proba(X[:50]).toarray(), dense)
