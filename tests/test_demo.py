"""The main job (`python -m skdistill demo`) and the command line."""
import io

import pytest

from skdistill.__main__ import main
from skdistill.demo import format_table, run_demo


def test_demo_table_compares_teacher_and_students():
    out = io.StringIO()
    rows = run_demo("breast_cancer", n_estimators=30, hidden=(16,), max_epochs=30, out=out)
    names = [r["model"] for r in rows]
    assert names == ["teacher (random forest)", "distilled student (MLP)",
                     "student on labels (MLP)"]
    for r in rows:
        assert r["accuracy"] > 0.85  # majority class is 0.63
        assert 0 < r["nll"] < 0.5 and 0 <= r["ece"] < 0.2 and r["ms_per_1000"] > 0
    # Both students are the same 30-16-2 network: 30*16 + 16 + 16*2 + 2 parameters.
    assert rows[1]["size"] == rows[2]["size"] == 530
    text = out.getvalue()
    assert "distilled student (MLP)" in text and "ECE" in text


def test_format_table_columns():
    row = dict(model="m", accuracy=0.5, nll=0.25, ece=0.125, size=7, ms_per_1000=1.5)
    assert format_table([row]).splitlines()[2].split() == ["m", "0.5000", "0.2500", "0.1250",
                                                           "7", "1.500"]


def test_cli_usage_and_unknown_command(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["nope"]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "nope"])


def test_demo_on_a_missing_data_file_says_where_without_a_traceback(tmp_path, capsys):
    assert main(["demo", "--dataset", "heloc", "--data-home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "heloc_dataset_v1.csv not found" in err and str(tmp_path / "heloc") in err
    assert "Traceback" not in err and "--dataset breast_cancer" in err
