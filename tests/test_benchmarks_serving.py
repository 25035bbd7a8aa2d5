"""The serving benchmark at a tiny size, with the optional runtimes (the serving extra) absent."""
import json
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from benchmarks import BENCHMARKS, run, summary
from benchmarks import serving

#: What ``pip install skdistill[serving]`` adds; a ``None`` in sys.modules fails its import.
EXTRAS = ("lightgbm", "treelite", "tl2cgen", "lleaves", "onnxmltools")


def synthetic(n_train=400, n_test=200, seed=0):
    X, y = make_classification(n_train + n_test, 8, n_informative=5, random_state=seed)
    X = X.astype(np.float32)
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]


def run_synthetic(argv, path, workdir):
    args = serving.parse_args(["--quick", "--json", str(path), *argv])
    recorder = serving.Recorder(args.json, args)
    data = synthetic()
    recorder.results["tables"]["synthetic"] = {"source": "make_classification", "train": 400,
                                               "test": 200, "features": 8}
    serving.run_table("synthetic", data, args, recorder, str(workdir))
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Teachers rf and lgbm asked for, width 8, both parts, every extra missing."""
    tmp = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as mp:
        for name in EXTRAS:
            mp.setitem(sys.modules, name, None)
        results = run_synthetic(["--teachers", "rf", "lgbm", "--widths", "8"], tmp / "r.json",
                                tmp)
    return results


def test_serving_is_a_registered_benchmark():
    assert BENCHMARKS["serving"] == "serving"
    assert summary("serving").startswith("Is distillation worth it?")


def test_quick_run_records_every_model_and_score(quick):
    models = {serving._label(serving.model_key(r)) for r in quick["quality"]}
    expected = {"RandomForest (10 trees), teacher", "CrossFit rf → MLPStudent(8)",
                "MLPClassifier(8) on labels", "MLPStudent(8) on labels",
                "CrossFit rf → MLPStudent(8) + munge"}
    assert models == expected
    for row in quick["quality"]:
        assert {"test_auc", "test_nll", "test_ece", "test_accuracy", "fit_s", "seed"} <= set(row)
        assert 0.5 < row["test_auc"] <= 1


def test_missing_lightgbm_skips_its_teacher_with_a_note(quick):
    assert not any(r.get("teacher") == "lgbm" for r in quick["quality"])
    assert any("lgbm skipped" in note and "lightgbm" in note for note in quick["notes"])


def test_every_runtime_is_measured_or_skipped_with_parity(quick):
    runtimes = {}
    for row in quick["latency"]:
        runtimes.setdefault(serving._label(serving.model_key(row)), {})[row["runtime"]] = row
    teacher = runtimes["RandomForest (10 trees), teacher"]
    assert set(teacher) == {"sklearn", "onnxruntime", "tl2cgen"}
    assert "not installed" in teacher["tl2cgen"]["skipped"]
    assert set(runtimes["CrossFit rf → MLPStudent(8)"]) == {
        "skdistill (distiller)", "skdistill (student_)", "onnxruntime"}
    assert set(runtimes["MLPClassifier(8) on labels"]) == {"sklearn", "onnxruntime"}
    assert set(runtimes["MLPStudent(8) on labels"]) == {"skdistill", "onnxruntime"}
    measured = [r for rows in runtimes.values() for r in rows.values() if "skipped" not in r]
    for row in measured:
        assert row["one_row_ms"] > 0 and row["batch_us_per_row"] > 0 and row["artifact_bytes"] > 0
        # each runtime's probabilities against the model's own predict_proba
        assert 0 <= row["max_abs_diff"] < (1e-5 if row["runtime"] == "onnxruntime" else 1e-12)
    student = runtimes["CrossFit rf → MLPStudent(8)"]
    # the distiller shipped without its teachers: about its student's size, no cache inside
    assert (student["skdistill (distiller)"]["artifact_bytes"]
            < 1.5 * student["skdistill (student_)"]["artifact_bytes"])
    assert student["onnxruntime"]["artifact"] == "ONNX"


def test_markdown_has_the_tables_and_a_goal_line_per_student(quick):
    text = serving.markdown(quick)
    assert "### synthetic" in text and "| model | runtime | 1 row ms |" in text
    goal = [line for line in text.splitlines() if line.startswith("Goal check, synthetic:")]
    assert len(goal) == 1 and " met by " in goal[0]
    students = [line for line in text.splitlines() if line.startswith("- CrossFit rf")]
    assert students and all(("quality met" in line or "quality NOT met" in line)
                            and ("single row met" in line or "single row NOT met" in line)
                            for line in students)


def _results(student_auc, student_nll, student_ms, teacher_ms):
    teacher = {"dataset": "d", "role": "teacher", "teacher": "rf", "trees": 5}
    student = {"dataset": "d", "role": "distilled", "teacher": "rf", "width": "8",
               "augment": "none"}
    quality = [{**teacher, "seed": 0, "test_auc": 0.80, "test_nll": 0.50},
               {**teacher, "seed": 1, "test_auc": 0.80, "test_nll": 0.50},
               {**student, "seed": 0, "test_auc": student_auc, "test_nll": student_nll},
               {**student, "seed": 1, "test_auc": student_auc, "test_nll": student_nll}]
    latency = [{**teacher, "runtime": "sklearn", "one_row_ms": 10 * teacher_ms},
               {**teacher, "runtime": "tl2cgen", "one_row_ms": teacher_ms},
               {**teacher, "runtime": "lleaves", "skipped": "lleaves is not installed"},
               {**student, "runtime": "onnxruntime", "one_row_ms": student_ms}]
    return {"quality": quality, "latency": latency}


def test_goal_line_says_met_only_when_quality_and_latency_are():
    head, _, line = serving.goal_lines(_results(0.7985, 0.49, 0.01, 0.02), "d")
    assert head.startswith("Goal check, d: met by 1 of 1")
    assert "quality met" in line and "single row met" in line and "tl2cgen, 0.0200 ms" in line
    for args, failed in (((0.797, 0.49, 0.01, 0.02), "quality NOT met (AUC 0.7970 <"),
                         ((0.81, 0.51, 0.01, 0.02), "quality NOT met"),
                         ((0.81, 0.49, 0.03, 0.02), "single row NOT met")):
        head, _, line = serving.goal_lines(_results(*args), "d")
        assert head.startswith("Goal check, d: met by 0 of 1") and head.endswith(": NOT met.")
        assert failed in line
    # without the latency part, the quality is checked and the latency said to be missing
    results = _results(0.7985, 0.49, 0.01, 0.02)
    results["latency"] = []
    head, _, line = serving.goal_lines(results, "d")
    assert head.startswith("Goal check, d: quality met by 1 of 1") and "not measured" in head
    assert line.endswith("single row not measured")


def test_single_row_timing_cycles_through_test_rows():
    X = np.arange(40, dtype=np.float32).reshape(20, 2)
    seen = []
    call = serving.cycling(lambda row: seen.append(row[0, 0]), serving.single_rows(X, n=5))
    for _ in range(12):
        call()
    assert seen == [0, 2, 4, 6, 8] * 2 + [0, 2]
    # measure's single-row calls go through different rows too
    rows = []

    def predict(batch):
        if len(batch) == 1:
            rows.append(float(batch[0, 0]))
        return np.column_stack([np.zeros(len(batch)), np.ones(len(batch))])

    out = serving.measure(predict, X, predict(X), repeats=30)
    assert len(rows) == 31 and len(set(rows)) == 20  # one warm-up call, then 30 timed
    assert out["max_abs_diff"] == 0


def test_teachers_are_fitted_once_per_seed_and_shared(monkeypatch, tmp_path):
    fits = []
    original = RandomForestClassifier.fit

    def spy(self, X, y, *args, **kwargs):
        fits.append(len(X))
        return original(self, X, y, *args, **kwargs)

    monkeypatch.setattr(RandomForestClassifier, "fit", spy)
    results = run_synthetic(["--teachers", "rf", "--widths", "4", "4x4", "--parts", "quality"],
                            tmp_path / "r.json", tmp_path)
    # four students of the seed (two with munge rows the full teacher labels), one full
    # teacher and five fold teachers between them
    assert sorted(fits) == [320] * 5 + [400]
    assert results["teacher_fits"] == [{"dataset": "synthetic", "teacher": "rf", "seed": 0,
                                        "fits": 6, "seconds": pytest.approx(
                                            results["teacher_fits"][0]["seconds"])}]
    distilled = [r for r in results["quality"] if r["role"] == "distilled"]
    assert [(r["augment"], r["n_augmented"]) for r in distilled] == [
        ("none", 0), ("munge", 800), ("none", 0), ("munge", 800)]
    assert not results["latency"]


def test_shared_teacher_keeps_its_cache_through_clone_and_not_in_a_pickle():
    import pickle

    cache = serving.TeacherCache()
    shared = serving.SharedTeacher(RandomForestClassifier(3, random_state=0), cache)
    X, _, y, _ = synthetic()
    first = clone(shared).fit(X, y)
    assert clone(shared).cache is cache and clone(shared).fit(X, y).estimator_ is first.estimator_
    assert cache.fits == 1 and clone(shared).fit(X[:100], y[:100]) and cache.fits == 2
    assert pickle.loads(pickle.dumps(cache)).fitted == {}


def test_missing_data_is_a_message_not_a_trace(tmp_path, capsys):
    assert run("serving", ["--quick", "--data-home", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "heloc: skipped" in out and "adult: skipped" in out and "no data" in out


def test_tables_are_rendered_again_from_the_json(quick, tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**quick, "args": {**quick["args"]}}))
    quick_md = tmp_path / "r.md"
    assert run("serving", ["--from-json", str(path), "--markdown", str(quick_md)]) == 0
    assert quick_md.read_text() == serving.markdown(quick)
