"""The data-layer benchmark: its JSON row, and the measure of another checkout (--code)."""
import json
from pathlib import Path

import pytest

from benchmarks import data_layer

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--repeats", "2", "--steps", "100", "--epochs", "1", "--features", "24", "--hidden", "8"]
RATIOS = ("sgld_vs_bare", "gped_vs_sgld_t10", "gped_vs_sgld_t100", "kd_epoch_vs_bare")


def _row(out):
    return json.loads(out.strip().splitlines()[-1])


def _check(row):
    assert row["repeats"] == 2 and row["steps"] == 100 and row["data"].startswith("4000x24")
    assert all(len(times) == 2 and min(times) > 0 for times in row["times"].values())
    for name in RATIOS:
        assert 0 < row[name] < 100, name
    # each ratio is the median of the within-repeat ratios of its two loops
    t = row["times"]
    pairs = [(a / b) for a, b in zip(t["sgld"], t["bare_sgld"])]
    assert row["sgld_vs_bare"] == pytest.approx(sum(pairs) / 2, rel=1e-3, abs=1e-3)


def test_a_tiny_run_prints_one_json_row_of_ratios(capsys):
    assert data_layer.main(TINY) == 0
    _check(_row(capsys.readouterr().out))


def test_code_measures_the_given_checkout_in_a_child_process(capsys):
    assert data_layer.main(["--code", str(ROOT)] + TINY) == 0
    row = _row(capsys.readouterr().out)
    _check(row)
    assert Path(row["code"]).resolve() == ROOT / "skdistill" / "__init__.py"


@pytest.mark.parametrize("argv, message", [(["--features", "8"], "--features 8: at least 20"),
                                           (["--steps", "60"], "--steps 60: at least 100")])
def test_sizes_that_cannot_run_are_refused_by_name(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        data_layer.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
