"""The students benchmark's serving part runs end to end at a tiny size (the full run is in
RESULTS.md)."""
import json

import pytest

from benchmarks import run
from benchmarks.students import PREDICT_MODELS


@pytest.mark.slow
def test_predict_part_quick_run(tmp_path, capsys):
    out = tmp_path / "predict.json"
    assert run("students", ["--part", "predict", "--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["model"], r["rows"]) for r in rows] == [
        (model, n) for model in PREDICT_MODELS for n in (1, 1000)]
    for row in rows:
        assert set(row) == {"model", "rows", "calls", "call_us", "bare_us", "ratio", "bare"}
        assert row["call_us"] > 0 and row["bare_us"] > 0
        assert row["ratio"] == pytest.approx(row["call_us"] / row["bare_us"])
        assert row["calls"] == (50 if row["rows"] == 1 else 5)
    assert result["threads"] == 1
    goals = result["goals"]
    assert all(isinstance(met, bool) for met in goals.values())
    assert "mlp_64_64, 1 row: faster than MLPClassifier" in goals
    assert not any(goal.startswith(("sklearn", "scaled_kd")) for goal in goals)
    printed = capsys.readouterr().out
    assert "| mlp_64_64 | 1 |" in printed and "| gped_uncertainty | 1000 |" in printed


def test_predict_part_models_can_be_chosen(tmp_path):
    out = tmp_path / "predict.json"
    assert run("students", ["--part", "predict", "--quick", "--models", "mlp_32",
                            "--calls", "3", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["rows"]) for r in rows] == [("mlp_32", 1), ("mlp_32", 1000)]
