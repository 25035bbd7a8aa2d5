"""The Menon et al. benchmark (``python -m benchmarks menon``) at a tiny size."""
import json

import numpy as np
import pytest

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
