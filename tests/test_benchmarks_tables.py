"""The raw-tables benchmark at a tiny size: the real HELOC table through the whole path."""
import json

import numpy as np
import pytest

from benchmarks import BENCHMARKS, run
from benchmarks.tables import load_table
from conftest import data_home, require_file


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    require_file("heloc/heloc_dataset_v1.csv")
    path = tmp_path_factory.mktemp("tables") / "rows.json"
    assert run("tables", ["--quick", "--datasets", "heloc", "--teachers", "rf",
                          "--data-home", str(data_home()), "--json", str(path)]) == 0
    return json.loads(path.read_text())["rows"]


def test_tables_is_a_registered_benchmark():
    assert BENCHMARKS["tables"] == "tables"


def test_heloc_special_codes_are_missing_values():
    require_file("heloc/heloc_dataset_v1.csv")
    X_train, X_test, y_train, y_test, _ = load_table("heloc", data_home())
    both = np.concatenate([X_train.to_numpy(), X_test.to_numpy()])
    assert not np.isin(both, [-7, -8, -9]).any() and np.isnan(both).any()
    assert not np.isnan(both).all(axis=1).any()  # rows without any value are dropped
    assert len(X_train) + len(X_test) == 9871 and set(np.unique(y_train)) == {0, 1}


def test_quick_run_measures_teacher_and_student(quick):
    (row,) = quick
    assert row["dataset"] == "heloc" and row["teacher"] == "rf"
    for name in ("teacher", "student", "labels_only"):
        assert 0.7 < row[f"{name}_auc"] <= 1 and 0 < row[f"{name}_nll"] < 0.7
    # the student pipeline exports from the raw frame and matches predict_proba
    assert row["student_onnx_max_abs_diff"] < 1e-5 and row["student_onnx_1_ms"] > 0
    assert row["student_proba_1_ms"] > 0 and row["teacher_proba_1000_us_per_row"] > 0
    # what keep_teachers=False keeps is the student, not the forests
    assert row["shipped_pickle_bytes"] <= 2 * row["student_pickle_bytes"]
    assert row["distiller_pickle_bytes"] > 5 * row["shipped_pickle_bytes"]
