"""Every script in examples/ runs to the end, on the real data and on its fallback without it.

Examples are documentation; they must not rot. Each runs twice: with ``SKDISTILL_DATA`` at the
real data folder, and with an empty one, where every loader raises ``DataFileNotFoundError`` and
the script must fall back (to data that ships with scikit-learn) and say so. Both runs set
``SKDISTILL_SYSTEM_DATA=0`` so that no script reads an OS package's copy
(``/usr/share/datasets``): a machine with one behaves like a fresh machine.

Both runs also set ``SKDISTILL_EXAMPLE_QUICK=1``: the costly scripts then fit on a few hundred
rows (and SGLD chains run shorter), in a block the gallery hides. Every line still runs, on the
real data's and the fallback's columns and classes, and prints; the full-size runs are the
gallery's (``make docs-full``).
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import data_home, require_file

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# The data files the examples read when present; each falls back without them.
EXAMPLE_DATA_FILES = [
    "heloc/heloc_dataset_v1.csv",
    "adult/adult.data.gz",
    "adult/adult.test.gz",
    "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz",
    "fashion-mnist/t10k-images-idx3-ubyte.gz",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz",
]


def _run(script, folder, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "SKDISTILL_DATA": str(folder), "SKDISTILL_SYSTEM_DATA": "0",
           "SKDISTILL_EXAMPLE_QUICK": "1"}
    cwd.mkdir()
    result = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should print what it shows"
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_on_the_real_data(script, tmp_path):
    for relpath in EXAMPLE_DATA_FILES:
        require_file(relpath)
    stdout = _run(script, data_home(), tmp_path / "cwd")
    assert "not found in" not in stdout, f"{script.name} fell back with the data present:\n" \
        + stdout


def _reads_data_files(script):
    """Whether a script calls a file loader of skdistill.datasets (load_heloc, load_mnist ...)."""
    tree = ast.parse(script.read_text())
    return any(isinstance(node, ast.Call)
               and getattr(node.func, "id", getattr(node.func, "attr", "")) in LOADERS
               for node in ast.walk(tree))


LOADERS = {"load_heloc", "load_adult", "load_magic", "load_higgs", "load_mnist",
           "load_fashion_mnist"}
DATA_EXAMPLES = [p for p in EXAMPLES if _reads_data_files(p)]


@pytest.mark.slow
@pytest.mark.parametrize("script", DATA_EXAMPLES, ids=[p.name for p in DATA_EXAMPLES])
def test_example_falls_back_without_data_and_says_so(script, tmp_path):
    # Scripts that read no data file have no fallback path: their run above is the only one.
    empty = tmp_path / "no_data"
    empty.mkdir()
    stdout = _run(script, empty, tmp_path / "cwd")
    # One line names the folder searched and the data used instead.
    notes = [line for line in stdout.splitlines() if f"not found in {empty}" in line]
    assert len(notes) == 1 and "using" in notes[0], stdout
    assert not any(empty.iterdir()), "an example must not download without being asked"


@pytest.mark.parametrize("script", DATA_EXAMPLES, ids=[p.name for p in DATA_EXAMPLES])
def test_example_that_reads_data_handles_a_missing_file(script):
    assert "DataFileNotFoundError" in script.read_text(), \
        f"{script.name} calls a data loader but has no fallback for a missing file"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_falls_back_only_on_a_missing_data_file(script):
    # A broad handler would also hide a corrupt file or a bug in a loader behind the fallback.
    broad = {"OSError", "IOError", "FileNotFoundError", "Exception", "BaseException"}
    for node in ast.walk(ast.parse(script.read_text())):
        if not isinstance(node, ast.ExceptHandler):
            continue
        where = f"{script.name}, line {node.lineno}"
        assert node.type is not None, f"{where}: a bare except; catch DataFileNotFoundError"
        classes = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        names = {getattr(c, "id", getattr(c, "attr", None)) for c in classes}
        assert not names & broad, \
            f"{where}: catch DataFileNotFoundError, not {ast.unparse(node.type)}"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_quick_mode_only_shrinks_the_work_and_is_hidden_from_the_gallery(script):
    # The runs above use the quick mode: it may change sizes, never skip a step or stop early,
    # and the gallery (which runs the full script) shows none of it.
    source = script.read_text()
    hidden = re.findall(r"# sphinx_gallery_start_ignore\n(.*?)# sphinx_gallery_end_ignore",
                        source, flags=re.S)
    visible = re.sub(r"# sphinx_gallery_start_ignore\n.*?# sphinx_gallery_end_ignore", "",
                     source, flags=re.S)
    assert "QUICK" not in visible, f"{script.name}: quick mode outside a hidden block"
    for block in hidden:
        for node in ast.walk(ast.parse(block)):
            where = f"{script.name}: {ast.unparse(node)[:80]!r} in a quick-mode block"
            assert not isinstance(node, (ast.Return, ast.Raise, ast.For, ast.While)), where
            assert not (isinstance(node, ast.If) and node.orelse), where
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                assert name in {"get", "resample", "set_params", "min", "len"}, where
