"""The GPU benchmark (issue 12) at a tiny size on the CPU: its records, its time limit, its errors.

No GPU is needed: ``--device cpu`` runs the same code paths, and CUDA's absence is simulated.
"""
import json
import math
import time

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator
from sklearn.datasets import make_classification

from benchmarks import BENCHMARKS, run
from benchmarks import gpu
from benchmarks.gpu import _TimeLimit, public_estimators
from conftest import require_file

import skdistill
from skdistill import GPEDDistiller, MLPStudent, SGLDTeacher

FILES = ["mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"] + [
    f"fashion-mnist/{part}-{kind}-idx{n}-ubyte.gz"
    for part in ("train", "t10k") for kind, n in (("images", 3), ("labels", 1))]
ESTIMATOR_KEYS = {"estimator", "status", "shape_device", "shape_cpu", "shape_equal",
                  "max_abs_diff", "mean_abs_diff", "class_agreement", "accuracy_device",
                  "accuracy_cpu", "fit_seconds_device", "fit_seconds_cpu", "device_params",
                  "tensor_devices"}
GPED_KEYS = {"dataset", "status", "n_train", "n_test", "step_size", "steps_planned",
             "steps_done", "completed", "burn_in", "thinning", "teacher_thinning",
             "teacher_samples",
             "student_steps", "fit_seconds", "gped_steps_per_s", "bare_steps", "bare_seconds",
             "bare_steps_per_s", "gped_vs_bare", "projected_seconds", "teacher_nll",
             "student_nll", "gap", "entropy_mae", "teacher_acc", "student_acc",
             "scoring_seconds", "paper"}
SMALL_RUN = pytest.mark.filterwarnings("ignore:GPEDDistiller.*at least 500 are advised")


def _require_data():
    for name in FILES:
        require_file(name)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    _require_data()
    path = tmp_path_factory.mktemp("gpu") / "gpu.json"
    with pytest.warns(UserWarning, match="at least 500 are advised"):
        assert run("gpu", ["--device", "cpu", "--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_gpu_is_a_registered_benchmark():
    assert BENCHMARKS["gpu"] == "gpu"


def test_every_public_estimator_is_enumerated_and_configured():
    top_level = {name for name in skdistill.__all__
                 if isinstance(getattr(skdistill, name), type)
                 and issubclass(getattr(skdistill, name), BaseEstimator)}
    names = public_estimators()
    assert top_level <= set(names) and len(names) == len(set(names))
    assert not any(name.startswith("Base") for name in names)
    assert set(names) <= set(gpu.CONFIGS)
    # every configuration runs all of its torch work on the device: the teacher too
    from benchmarks.gpu import device_params
    for name in names:
        estimator = gpu.CONFIGS[name]()
        assert type(estimator).__name__ == name and device_params(estimator), name
        teacher = estimator.get_params(deep=False).get("teacher")
        assert teacher is None or device_params(teacher), name


def test_quick_run_records_the_run_and_the_machine(quick):
    assert quick["benchmark"] == "gpu" and quick["device"] == "cpu" and quick["quick"]
    assert quick["torch_version"] == torch.__version__ and quick["device_name"]
    assert quick["steps"] == 200 and quick["time_limit"] is None
    assert quick["time_limit_hit"] is False and quick["wall_seconds"] > 0


# fitted on the digits' labels modulo 2 (skdistill._testing.labels_for)
BINARY_ONLY = {"RankingDistiller"}


def test_quick_run_fits_every_estimator_on_both_devices_alike(quick):
    rows = quick["estimators"]
    assert [r["estimator"] for r in rows] == public_estimators()
    for row in rows:
        assert row["status"] == "ok", row
        assert set(row) == ESTIMATOR_KEYS
        n_classes = 2 if row["estimator"] in BINARY_ONLY else 10
        assert row["shape_device"] == row["shape_cpu"] == [200, n_classes]
        assert row["shape_equal"]
        # the "device" here is the CPU too, and both fits have the same seed: identical
        assert row["max_abs_diff"] == row["mean_abs_diff"] == 0.0
        assert row["class_agreement"] == 1.0
        assert row["accuracy_device"] == row["accuracy_cpu"] > 0.1
        assert row["device_params"] and all(p.split("__")[-1] == "device"
                                            for p in row["device_params"])
        assert row["tensor_devices"] == ["cpu"]
    by_name = {r["estimator"]: r for r in rows}
    # nested device parameters are set too, not only the estimator's own
    assert set(by_name["GPEDDistiller"]["device_params"]) == {"teacher__device",
                                                              "student__device"}


def test_quick_run_records_gped_next_to_the_paper(quick):
    fashion, mnist = quick["gped"]
    assert (fashion["dataset"], mnist["dataset"]) == ("fashion", "mnist")
    assert (fashion["step_size"], mnist["step_size"]) == (4e-6, 3e-5)
    for row in (fashion, mnist):
        assert set(row) == GPED_KEYS and row["status"] == "ok"
        assert row["steps_done"] == row["steps_planned"] == 200 and row["completed"]
        assert row["student_steps"] == (200 - row["burn_in"]) // row["thinning"] == 150
        assert row["n_train"] == 1000 and row["n_test"] == 500 and row["teacher_samples"] >= 1
        for key in ("teacher_nll", "student_nll", "entropy_mae", "gped_steps_per_s",
                    "bare_steps_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0
        assert row["gap"] == pytest.approx(row["student_nll"] - row["teacher_nll"])
        assert row["gped_vs_bare"] == pytest.approx(
            row["gped_steps_per_s"] / row["bare_steps_per_s"])
        assert row["gped_steps_per_s"] == pytest.approx(row["steps_done"] / row["fit_seconds"])
        assert row["bare_steps"] % 50 == 0 and row["bare_steps"] > 0
    paper = {r["dataset"]: (r["paper"]["teacher_nll"], r["paper"]["student_nll"],
                            r["paper"]["entropy_mae"]) for r in quick["gped"]}
    assert paper == {"fashion": (0.052, 0.082, 0.016), "mnist": (0.137, 0.184, 0.013)}
    assert "Table 1" in fashion["paper"]["source"] and "Table 3" in mnist["paper"]["source"]


@SMALL_RUN
def test_time_limit_stops_gped_cleanly_and_says_how_far_it_got(tmp_path):
    _require_data()
    path = tmp_path / "gpu.json"
    assert run("gpu", ["--device", "cpu", "--quick", "--parts", "gped", "--datasets", "mnist",
                       "--steps", "1000000", "--time-limit", "8", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    (row,) = result["gped"]
    assert result["time_limit_hit"] and "estimators" not in result
    assert row["steps_planned"] == 1_000_000 and not row["completed"]
    assert row["burn_in"] < row["steps_done"] < 1_000_000
    assert row["student_steps"] == row["steps_done"] - row["burn_in"]  # thinning 1
    assert row["projected_seconds"] > row["fit_seconds"]
    assert math.isfinite(row["student_nll"]) and math.isfinite(row["entropy_mae"])


@SMALL_RUN
def test_time_limit_callback_ends_the_chain_after_the_current_student_step():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    model = GPEDDistiller(
        SGLDTeacher(hidden_layer_sizes=(8,), step_size=1e-3, prior_precision=1.0,
                    thinning=5),
        MLPStudent(hidden_layer_sizes=(8,), callbacks=[("limit", _TimeLimit(time.perf_counter()))]),
        n_iter=5000, burn_in=20, thinning=2, random_state=0).fit(X, y)
    assert model.n_student_steps_ == 1
    assert model.teacher_.n_iter_ == 20 + 2  # burn-in, then one student step's iterations
    assert model.predict_proba(X[:3]).shape == (3, 2)


def test_cuda_without_cuda_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        run("gpu", ["--quick"])  # --device cuda is the default
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--device='cuda' is invalid" in err and "--device cpu" in err
    assert "CUDA" in err


def test_an_estimator_without_a_configuration_is_an_error_row(monkeypatch, tmp_path):
    monkeypatch.delitem(gpu.CONFIGS, "VITeacher")
    path = tmp_path / "gpu.json"
    assert run("gpu", ["--device", "cpu", "--parts", "estimators", "--estimators", "VITeacher",
                       "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["estimators"]
    assert row["status"].startswith("error: no small configuration")


def test_too_few_steps_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        run("gpu", ["--device", "cpu", "--quick", "--steps", "10"])
    assert "--steps 10 is invalid" in capsys.readouterr().err


def test_bare_rate_matches_its_step_count():
    X = np.random.default_rng(0).random((300, 784), dtype=np.float32)
    y = np.arange(300) % 10
    steps, seconds = gpu._bare_rate(torch.as_tensor(X), torch.as_tensor(y), 3e-5, 0.0, "cpu")
    assert steps == 50 and seconds > 0
