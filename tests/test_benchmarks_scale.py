"""The scale benchmark at a tiny size: its generator, its runs' rows, its checks and projection."""
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks import BENCHMARKS, run
from benchmarks.scale import (N_FEATURES, bayes_proba, make_block, projection, sample,
                              transfer_array)

RUN_KEYS = {"size", "mode", "seed", "model_seed", "rss_before_fit_mib", "fit_seconds",
            "peak_rss_mib", "teacher_fit_seconds", "transfer_stats", "auc", "train_seconds",
            "label_rows_per_s", "train_rows_per_s", "mean_abs_diff_teacher"}
STAGES = {"rows", "chunks", "passes", "labelled_chunks", "label_seconds", "wait_seconds",
          "fit_seconds"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "scale.json"
    assert run("scale", ["--quick", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_scale_is_a_registered_benchmark():
    assert BENCHMARKS["scale"] == "scale"


def test_quick_run_has_a_row_per_size_and_mode_with_its_stages(quick):
    runs = quick["runs"]
    assert {(r["size"], r["mode"]) for r in runs} == {
        (20_000, "process"), (60_000, "process"), (20_000, "cluster")}
    for r in runs:
        assert RUN_KEYS <= set(r), r["mode"]
        stats = r["transfer_stats"]
        assert STAGES <= set(stats)
        assert stats["rows"] == r["size"] and stats["chunks"] == r["size"] // 10_000
        assert stats["passes"] == 1 and stats["labelled_chunks"] == stats["chunks"]
        assert 0 < r["train_seconds"] <= stats["fit_seconds"] < r["fit_seconds"]
        assert r["peak_rss_mib"] >= r["rss_before_fit_mib"] > 0
        assert r["fit_seconds"] > r["teacher_fit_seconds"] > 0
        assert r["label_rows_per_s"] > 0 and r["train_rows_per_s"] > 0
        assert 0.5 < r["auc"] <= 1
    cluster = next(r for r in runs if r["mode"] == "cluster")
    assert len(cluster["worker_peak_rss_mib"]) == 2 and min(cluster["worker_peak_rss_mib"]) > 0
    assert cluster["cluster_start_seconds"] > 0


def test_quick_run_has_its_baselines_checks_and_projection(quick):
    base = quick["baselines"]
    assert 0.8 < base["bayes"]["auc"] < 0.95 and 0.3 < base["bayes"]["test_positive_rate"] < 0.7
    for name in ("teacher", "student, labelled rows only", "KD, labelled rows only"):
        assert 0.5 < base[name]["auc"] <= base["bayes"]["auc"] + 0.02, name
    assert base["generate_rows_per_s"] > 0
    checks = quick["checks"]
    assert checks["process"]["sizes"] == [20_000, 60_000] and checks["process"]["size_ratio"] == 3
    assert checks["process"]["peak_rss_ratio"] > 0 and checks["process"]["fit_time_ratio"] > 0
    assert "cluster" not in checks  # one size of it
    compared = checks["modes_compared"]
    assert [c["size"] for c in compared] == [20_000]
    assert compared[0]["max_abs_proba_diff"] >= 0
    assert quick["projection"]["process"]["rows"] == 11_000_000
    assert np.isfinite(quick["projection"]["process"]["fit_seconds"])  # noise at this size
    assert quick["args"]["quick"] and quick["machine"]["cpus"] >= 1


def test_blocks_are_a_function_of_part_seed_and_index():
    X, p, y = make_block("transfer", 3, 5, 1000)
    assert X.shape == (1000, N_FEATURES) and X.dtype == np.float32
    np.testing.assert_array_equal(X, make_block("transfer", 3, 5, 1000)[0])
    np.testing.assert_allclose(p, bayes_proba(X))
    assert set(np.unique(y)) == {0, 1}
    for other in [("transfer", 4, 5), ("transfer", 3, 6), ("test", 3, 5), ("labelled", 3, 5)]:
        assert not np.allclose(X, make_block(*other, 1000)[0]), other


def test_the_dask_transfer_set_is_the_generators_blocks_unmaterialised():
    X = transfer_array(seed=1, n=2_500, chunk=1_000)
    assert X.shape == (2_500, N_FEATURES) and X.chunks[0] == (1_000, 1_000, 500)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X.compute(scheduler="sync"), sample("transfer", 1, 2_500,
                                                                      1_000)[0])
    np.testing.assert_array_equal(X.blocks[2].compute(scheduler="sync"),
                                  make_block("transfer", 1, 2, 500)[0])


def test_labels_follow_p_star_with_about_half_positives():
    X, p, y = sample("test", 0, 40_000, 20_000)
    assert 0.45 < y.mean() < 0.6 and abs(y.mean() - p.mean()) < 0.01
    assert 0.84 < roc_auc_score(y, p) < 0.9


def test_projection_is_a_line_through_the_two_largest_sizes():
    runs = [{"size": n, "mode": "process", "seed": 0, "model_seed": 0, "fit_seconds": t,
             "label_rows_per_s": 1e5, "train_rows_per_s": 2e5,
             "transfer_stats": {"passes": 2}}
            for n, t in [(1_000_000, 50.0), (3_000_000, 110.0), (10_000_000, 320.0)]]
    runs.append({**runs[0], "model_seed": 1, "fit_seconds": 1e6})  # seed-noise runs: left out
    out = projection(runs)["process"]
    assert out["from_sizes"] == [3_000_000, 10_000_000]
    assert out["seconds_per_million_rows"] == pytest.approx(30.0)
    assert out["fit_seconds"] == pytest.approx(350.0)
    assert out["label_worker_seconds"] == pytest.approx(110.0)
    assert out["train_seconds"] == pytest.approx(110.0)
