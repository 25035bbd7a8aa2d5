"""The benchmark harness: a package at the checkout's root, run as ``python -m benchmarks``.

It lives beside its recorded results and is not part of the installed package, whose modules
never compute a path out of their own folder (into a checkout that a wheel does not have).
"""
import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks
from benchmarks import BENCHMARKS, main, summary

import skdistill

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "skdistill"


def test_the_harness_is_the_checkouts_benchmarks_folder_not_part_of_the_package():
    assert Path(benchmarks.__file__).resolve() == ROOT / "benchmarks" / "__init__.py"
    assert benchmarks.REPO == ROOT
    assert "benchmarks" not in {m.name for m in pkgutil.iter_modules(skdistill.__path__)}
    assert not (PACKAGE / "benchmarks").exists()
    assert "benchmarks" not in skdistill._SUBMODULES


def _paths_above_its_folder(tree):
    """Expressions of a module that climb above a folder: ``.parents``, ``.parent.parent``,
    ``dirname(dirname(...))``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "parents":
            found.append(node)
        elif (isinstance(node, ast.Attribute) and node.attr == "parent"
              and isinstance(node.value, ast.Attribute) and node.value.attr == "parent"):
            found.append(node)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "dirname"
              and node.args and isinstance(node.args[0], ast.Call)
              and getattr(node.args[0].func, "attr", None) == "dirname"):
            found.append(node)
    return found


def test_no_module_of_the_package_computes_a_path_into_the_checkout():
    climbing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        climbing += [f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
                     for node in _paths_above_its_folder(tree)]
    assert climbing == []


def test_the_path_check_finds_a_climb_to_the_checkout():
    for code in ["REPO = Path(__file__).resolve().parents[2]",
                 "ROOT = Path(__file__).parent.parent",
                 "ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))"]:
        assert len(_paths_above_its_folder(ast.parse(code))) == 1, code
    assert _paths_above_its_folder(ast.parse("HERE = os.path.dirname(__file__)")) == []


# -- the command line ------------------------------------------------------------------------
def test_benchmarks_list_each_with_its_summary(capsys):
    for argv in ([], ["--help"], ["-h"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: python -m benchmarks NAME [options]")
        assert "benchmarks:" in out and "python -m benchmarks NAME --help" in out
        for name in BENCHMARKS:
            line = next(line for line in out.splitlines() if line.split()[:1] == [name])
            assert summary(name) in line and len(summary(name)) > 20


def test_summary_is_the_first_line_of_the_module_docstring():
    from benchmarks import dao_tabular

    assert summary("dao_tabular") == dao_tabular.__doc__.strip().splitlines()[0]


def test_unknown_benchmark_exits_2_with_the_list(capsys):
    assert main(["nope"]) == 2
    err = capsys.readouterr().err
    assert "python -m benchmarks: unknown benchmark 'nope'" in err
    assert "usage: python -m benchmarks NAME" in err and all(name in err for name in BENCHMARKS)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_each_benchmark_prints_its_usage(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m benchmarks {name}")


ENTRY_POINT = """
import contextlib, io, runpy, sys
for argv in (["benchmarks", "--help"], ["benchmarks", "students", "--help"],
             ["benchmarks", "nope"]):
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


def test_python_m_benchmarks_runs_from_the_checkouts_root():
    # As a user types it in the checkout's root: the folder on the path, no PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", ENTRY_POINT], capture_output=True, text=True,
                          cwd=ROOT, env={**env, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["--help|0|usage: ", "students --help|0|usage: ",
                                        "nope|2|python "]
