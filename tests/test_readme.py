"""The README's code runs as written: each ```python block, alone, in a fresh namespace."""
import contextlib
import io
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(markdown):
    """``(first line number, code)`` of every ```python block in ``markdown``."""
    return [(markdown.count("\n", 0, match.start(1)) + 1, match.group(1))
            for match in re.finditer(r"^```python\n(.*?)^```", markdown, flags=re.M | re.S)]


def run_block(code, first_line=1):
    """Execute ``code`` as a script of its own and return what it printed.

    Padded with blank lines so that a traceback points at the README's own line numbers.
    """
    torch.set_num_threads(1)
    source = "\n" * (first_line - 1) + code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(README), "exec"), {"__name__": "__main__"})
    return printed.getvalue()


BLOCKS = python_blocks(README.read_text())


def test_readme_opens_with_a_python_quick_start():
    assert BLOCKS, "README.md should show a ```python quick start"


@pytest.mark.parametrize("first_line, code", BLOCKS, ids=[f"line{n}" for n, _ in BLOCKS])
def test_readme_block_runs_as_written(first_line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a block writes lands here
    printed = run_block(code, first_line)
    assert printed.strip(), "a README block should print what it shows"


def test_quick_start_prints_a_good_teacher_and_student():
    first_line, code = BLOCKS[0]
    printed = run_block(code, first_line)
    scores = dict(re.findall(r"^(teacher|student)\b.*accuracy (\d\.\d+)", printed, flags=re.M))
    assert set(scores) == {"teacher", "student"}, printed
    # Digits from 200 labels and 1,000 teacher-labelled rows: an untrained student falls short.
    assert all(float(accuracy) > 0.9 for accuracy in scores.values()), printed
    assert len(re.findall(r"log loss \d+\.\d+", printed)) == 2, printed


def test_a_block_using_an_undefined_name_fails():
    # What the old quick start did: fit(X, y) with X never defined.
    with pytest.raises(NameError, match="'X'"):
        run_block("from skdistill import MLPStudent\nMLPStudent().fit(X, y)\n")
