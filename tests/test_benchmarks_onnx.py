"""The ONNX latency benchmark runs end to end at a tiny size (the full run is in RESULTS.md)."""
import json

import pytest

from benchmarks import BENCHMARKS, run


@pytest.mark.slow
def test_onnx_benchmark_quick_run(tmp_path, capsys):
    out = tmp_path / "onnx.json"
    assert BENCHMARKS["onnx"] == "onnx_latency"
    assert run("onnx", ["--quick", "--models", "mlp", "--repeats", "5", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["model"], r["rows"]) for r in rows] == [("mlp", 1), ("mlp", 1000)]
    for row in rows:
        assert row["max_abs_diff"] < 1e-5  # onnxruntime gives predict_proba
        for key in ("onnx_ms", "predict_proba_ms", "torch_ms"):
            assert row[key] > 0
        assert row["onnx_over_predict_proba"] == pytest.approx(
            row["onnx_ms"] / row["predict_proba_ms"])
    assert isinstance(result["goal_met"], bool)
    printed = capsys.readouterr().out
    assert "| mlp | 1 |" in printed and "single-row onnx / predict_proba" in printed
