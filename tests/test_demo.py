"""The main job (`python -m skdistill demo`) and the command line of the package."""
import io
import os
import subprocess
import sys

import pytest

from conftest import data_home, require_file
from skdistill.__main__ import main
from skdistill.demo import MODELS, format_table, load_demo_data, run_demo, student_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# 64 pixels -> 32 hidden units -> 10 digits: 64*32 + 32 + 32*10 + 10 weights and biases.
STUDENT_SIZE = 2410


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    result = run_demo("digits", seeds=2, quick=True, out_dir=out_dir, stream=printed,
                      progress=False)
    return result, printed.getvalue(), out_dir


def test_quick_demo_result_has_every_model_metric_and_seed(quick):
    result, _, _ = quick
    assert result["dataset"] == "digits" and result["seeds"] == [0, 1]
    assert [row["key"] for row in result["rows"]] == list(MODELS)
    for row in result["rows"]:
        per_seed = result["per_seed"][row["key"]]
        assert len(per_seed) == 2
        for metric in ("accuracy", "nll", "ece", "size", "ms_per_row", "ms_per_1000"):
            values = [s[metric] for s in per_seed]
            assert row[metric] == pytest.approx(sum(values) / 2)
            assert row[f"{metric}_std"] == pytest.approx(abs(values[0] - values[1]) / 2)
        assert 0.8 < row["accuracy"] <= 1 and 0 < row["nll"] < 1.5 and 0 <= row["ece"] < 0.5
        assert row["ms_per_row"] > 0 and row["ms_per_1000"] > 0
    setting = result["setting"]
    assert (setting["labelled"], setting["unlabelled"], setting["test_rows"]) == (200, 1000, 597)


def test_quick_demo_compares_a_big_teacher_with_three_equal_students(quick):
    result, _, _ = quick
    rows = {row["key"]: row for row in result["rows"]}
    assert rows["crossfit"]["size"] == rows["kd"]["size"] == rows["labels"]["size"] \
        == STUDENT_SIZE
    assert rows["teacher"]["size"] > 2 * STUDENT_SIZE  # 50 trees: thousands of nodes
    # Only cross-fitting calibrates the under-confident forest: plain KD copies it.
    assert rows["kd"]["ece"] > rows["crossfit"]["ece"] + 0.05
    assert all(cf["nll"] < kd["nll"] for cf, kd in zip(result["per_seed"]["crossfit"],
                                                       result["per_seed"]["kd"]))


def test_quick_demo_prints_the_table_figure_path_and_explanation(quick):
    result, printed, out_dir = quick
    table = printed[printed.index("model "):]
    lines = table.splitlines()
    assert lines[0].split() == ["model", "accuracy", "NLL", "ECE", "size", "ms/row", "ms/1k",
                                "rows"]
    for line, key in zip(lines[2:6], MODELS):
        assert line.startswith(MODELS[key].format(n=200)), line
        assert line.count("±") == 3
    path = result["figure"]
    assert path == str(out_dir / "skdistill_demo_digits.png") and f": {path}" in printed
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 10_000  # two panels of four models, not an empty canvas
    for words in ("What the columns mean", "expected calibration error", "x smaller",
                  "labels alone", "under-confident"):
        assert words in printed, words


def test_every_student_takes_the_same_number_of_steps():
    # 200 rows are 2 batches of 128, 1,200 rows 10: the labels-only student runs 5x the epochs.
    assert student_for(200, 1000, 0).max_epochs == 500
    assert student_for(1200, 1000, 0).max_epochs == 100
    assert student_for(5500, 1000, 0).max_epochs == 24  # 43 batches: 1,032 steps


def test_format_table_columns():
    row = dict(model="m", accuracy=0.5, nll=0.25, ece=0.125, size=12345, ms_per_row=1.5,
               ms_per_1000=20.0, accuracy_std=0.01, nll_std=0.02, ece_std=0.03)
    assert format_table([row]).splitlines()[2].split() == [
        "m", "0.500", "±", "0.010", "0.250", "±", "0.020", "0.125", "±", "0.030", "12,345",
        "1.500", "20.0"]


def test_demo_progress_bar_and_bad_arguments(tmp_path, capsys):
    run_demo("breast_cancer", seeds=1, quick=True, out_dir=tmp_path, stream=io.StringIO())
    err = capsys.readouterr().err
    assert "demo: 100%" in err and "3/3" in err  # three fits for the one seed
    with pytest.raises(ValueError, match=r"demo: parameter seeds=0 is invalid"):
        run_demo(seeds=0)
    with pytest.raises(ValueError, match=r"demo: parameter dataset='nope' is invalid"):
        run_demo("nope")
    with pytest.raises(ValueError, match=r"demo: parameter dataset='nope' is invalid"):
        load_demo_data("nope")
    for argv in (["demo", "--dataset", "nope"], ["demo", "--seeds", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "expected an integer >= 1, got '0'" in capsys.readouterr().err


@pytest.mark.parametrize("dataset, relpath", [("heloc", "heloc/heloc_dataset_v1.csv"),
                                              ("adult", "adult/adult.data.gz")])
def test_quick_demo_on_the_real_files(dataset, relpath, tmp_path):
    require_file(relpath)
    result = run_demo(dataset, seeds=1, quick=True, out_dir=tmp_path, data_home=data_home(),
                      stream=io.StringIO(), progress=False)
    assert result["setting"]["test_rows"] == 3000
    assert all(0.6 < row["accuracy"] < 1 for row in result["rows"])
    assert os.path.exists(tmp_path / f"skdistill_demo_{dataset}.png")


def test_demo_on_a_missing_data_file_says_where_without_a_traceback(tmp_path, capsys):
    assert main(["demo", "--dataset", "heloc", "--data-home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "heloc_dataset_v1.csv not found" in err and str(tmp_path / "heloc") in err
    assert "Traceback" not in err and "--dataset digits" in err


# -- the command line ------------------------------------------------------------------------
def test_package_usage_and_unknown_command(capsys):
    for argv in ([], ["--help"], ["-h"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m skdistill COMMAND")
        assert "\n  demo " in out and "\n  benchmarks " not in out  # the one command
        assert "from a source checkout" in out and "python -m benchmarks NAME" in out
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'nope'" in err and "demo" in err
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0 and "--seeds" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["benchmarks", "benchmark"])
def test_the_package_has_no_benchmarks_command_and_says_where_they_run(command, capsys):
    for argv in ([command], [command, "--help"], [command, "students"]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and "not part of the installed package" in err
        assert "python -m benchmarks NAME" in err and "source checkout" in err


ENTRY_POINTS = """
import contextlib, io, runpy, sys
for argv in (["skdistill", "--help"], ["skdistill", "nope"], ["skdistill", "benchmarks"]):
    sys.argv = list(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exc.code
    print(" ".join(argv[1:]), code, (out.getvalue() or err.getvalue())[:7], sep="|")
"""


def test_module_entry_point_prints_usage_and_exits_0():
    # python -m skdistill, run as __main__ in a fresh interpreter.
    done = subprocess.run([sys.executable, "-c", ENTRY_POINTS], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["--help|0|usage: ", "nope|2|python ",
                                        "benchmarks|2|python "]
