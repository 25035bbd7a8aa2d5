"""The pruning benchmark runs end to end at a tiny size (the full run is in RESULTS.md)."""
import json

import pytest

from benchmarks import run
from conftest import require_file


@pytest.mark.slow
def test_pruning_benchmark_quick_run(tmp_path, capsys):
    require_file("mnist/t10k-images-idx3-ubyte.gz")
    require_file("mnist/t10k-labels-idx1-ubyte.gz")
    out = tmp_path / "rows.json"
    assert run("pruning", ["--quick", "--models", "fcnn", "--masks", "0", "--n-iter", "600", "--burn-in", "100",
                           "--epochs", "20", "--speed", "--repeats", "2", "--json", str(out),
                           "--plot", str(tmp_path / "front.png")]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["method"], r["k1"], r["k2"], r["lam"]) for r in rows] == [
        ("width", 0.25, 0.25, 0.0), ("width", 0.25, 1.0, 0.0), ("width", 1.0, 0.25, 0.0),
        ("width", 1.0, 1.0, 0.0), ("pruning", 1.0, 1.0, 1e-2), ("pruning", 1.0, 1.0, 3e-2)]
    full = rows[3]
    assert full["hidden"] == [400, 400] and full["n_pruned_units"] == 0
    for row in rows[4:]:  # pruned from the full student: fewer units, fewer FLOPs
        assert row["n_pruned_units"] > 0 and row["flops"] < full["flops"]
        assert sum(row["hidden"]) == 800 - row["n_pruned_units"]
    assert [r["flops_ratio"] < 1 for r in result["speed"]] == [True, True]
    assert (tmp_path / "front.png").stat().st_size > 0
    assert "| fcnn | 0 |" in capsys.readouterr().out
