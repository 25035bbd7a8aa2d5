"""The Bayesian-teachers benchmark (Morad et al. 2026) at a tiny size: its rows and measurements."""
import json

import numpy as np
import pytest
import torch

from benchmarks import BENCHMARKS, run
from benchmarks.bayes_teachers import TEACHERS, entropy, gradient_noise
from conftest import data_home, require_file

ROW_KEYS = {"teacher", "seed", "n_train", "n_test", "teacher_accuracy", "teacher_nll",
            "teacher_ece", "target_entropy", "student_accuracy", "student_nll", "student_ece",
            "grad_var_end", "grad_var_early", "grad_mean_sqnorm_end", "kl_std_end",
            "kl_mean_end", "loss_std_last_epoch", "loss_mean_last_epoch", "seconds"}
TEACHER_KEYS = {"teacher_seed", "teacher_train_accuracy", "teacher_train_nll",
                "teacher_train_ece", "teacher_seconds"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        require_file(f"fashion-mnist/{name}")
    path = tmp_path_factory.mktemp("bayes_teachers") / "rows.json"
    assert run("bayes_teachers", ["--quick", "--data-home", str(data_home()),
                                  "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_bayes_teachers_is_a_registered_benchmark():
    assert BENCHMARKS["bayes_teachers"] == "bayes_teachers"


def test_quick_run_has_one_row_per_target_with_every_key(quick):
    rows = {r["teacher"]: r for r in quick["rows"]}
    assert list(rows) == ["one-hot"] + TEACHERS
    assert set(rows["one-hot"]) == ROW_KEYS
    for name in TEACHERS:
        assert (set(rows[name]) - {"laplace_prior_precision", "mc_dropout"}
                == ROW_KEYS | TEACHER_KEYS)
    assert rows["laplace"]["laplace_prior_precision"] > 0
    assert rows["mcdropout"]["mc_dropout"] == 0.1
    assert rows["laplace_kfac"]["laplace_prior_precision"] > 0
    assert set(quick["summary"]) == set(rows)


def test_students_beat_chance_and_their_gradient_noise_is_measured(quick):
    for row in quick["rows"]:
        assert row["student_accuracy"] > 0.3, row["teacher"]  # chance is 0.1
        for key in ("grad_var_end", "grad_var_early"):
            assert np.isfinite(row[key]) and row[key] > 0, (row["teacher"], key)
    one_hot = next(r for r in quick["rows"] if r["teacher"] == "one-hot")
    assert one_hot["target_entropy"] == 0.0
    assert all(0 < r["target_entropy"] < np.log(10) for r in quick["rows"]
               if r["teacher"] != "one-hot")
    # a one-hot target never matches a softmax: its residual, and so its noise, is the largest
    assert all(r["grad_var_end"] < one_hot["grad_var_end"] for r in quick["rows"]
               if r["teacher"] != "one-hot")


def test_gradient_noise_is_zero_when_every_minibatch_has_the_same_gradient():
    torch.manual_seed(0)
    module = torch.nn.Linear(4, 3)
    X = np.tile(np.random.default_rng(0).standard_normal((1, 4)), (40, 1)).astype(np.float32)
    targets = np.tile(np.array([[0.2, 0.3, 0.5]], dtype=np.float32), (40, 1))
    same = gradient_noise(module, X, targets, batch_size=8, n_batches=5, seed=0)
    assert same["grad_var"] < 1e-12 and same["kl_std"] < 1e-6
    targets[::2] = [1, 0, 0]
    assert gradient_noise(module, X, targets, batch_size=8, n_batches=5, seed=0)["grad_var"] > 0


def test_target_entropy_of_float32_probabilities_with_exact_zeros_is_finite():
    proba = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(entropy(proba), [0.0, np.log(2)])
