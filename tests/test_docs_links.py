"""The docs as a user reads them, checked on the sources in milliseconds (no Sphinx).

- A link's text is a page's title, never a file name (``[Students](students.md)``, not
  ``[students.md](students.md)``), in ``doc/*.md``, ``README.md`` and the examples' docstrings.
- No user-facing page or docstring (``doc/*.md``, ``README.md``, the examples, the docstrings of
  ``skdistill/``) refers to an issue or a test file.
- The front page has install and quick-start sections; its quick start is the README's.
- The API reference lists no command-line entry point (``main``, ``run``, ``usage``).
"""
import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "doc"
sys.path.insert(0, str(DOC / "_ext"))
import skdistill_docs  # noqa: E402

PAGES = sorted(DOC.glob("*.md")) + [ROOT / "README.md"]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# The library and the benchmark harness beside it (its docstrings are its documentation).
LIBRARY = sorted((ROOT / "skdistill").rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
_FILE_NAME = re.compile(r"^`?[\w./-]+\.(md|rst|py|ipynb|txt|json)`?$")
_REFERENCE = re.compile(r"\bissues?\s*#?\d+|\btests/|\btest_\w+\.py\b", re.I)


def file_name_links(text):
    """The ``[text](target)`` links of ``text`` whose text is a file name or the target."""
    return [m.group(0) for m in _LINK.finditer(text)
            if _FILE_NAME.match(m.group(1)) or m.group(1) == m.group(2)]


def references(text):
    """The lines of ``text`` that refer to an issue or a test file."""
    return [line.strip() for line in text.splitlines() if _REFERENCE.search(line)]


def docstrings(path):
    """The module, class and function docstrings of the Python file ``path``, joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [tree] + [node for node in ast.walk(tree) if isinstance(
        node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return "\n".join(ast.get_docstring(node, clean=False) or "" for node in nodes)


def test_the_checks_catch_what_they_are_for():
    assert file_name_links("see [students.md](students.md) and [x](doc/x.md)") == [
        "[students.md](students.md)"]
    assert file_name_links("[doc/gped.md](doc/gped.md), [`a.py`](../a.py), [u](u)") == [
        "[doc/gped.md](doc/gped.md)", "[`a.py`](../a.py)", "[u](u)"]
    assert file_name_links("[Students](students.md) ![fig.png](fig.png)") == []
    assert references("the target (issue 2) was\nfine\nsee tests/test_dask.py") == [
        "the target (issue 2) was", "see tests/test_dask.py"]
    assert references("Issue #12 asks\nin test_gped.py\nX_test, mean_test_score, issues") == [
        "Issue #12 asks", "in test_gped.py"]


@pytest.mark.parametrize("page", PAGES + EXAMPLES, ids=[p.name for p in PAGES + EXAMPLES])
def test_link_texts_are_titles_not_file_names(page):
    text = docstrings(page) if page.suffix == ".py" else page.read_text(encoding="utf-8")
    assert file_name_links(text) == [], f"{page.name}: write the page's title as the link text"


@pytest.mark.parametrize("page", PAGES + EXAMPLES, ids=[p.name for p in PAGES + EXAMPLES])
def test_pages_and_examples_refer_to_no_issue_or_test_file(page):
    text = docstrings(page) if page.suffix == ".py" else page.read_text(encoding="utf-8")
    assert references(text) == [], f"{page.name}: state the fact without the reference"


def test_library_docstrings_refer_to_no_issue_or_test_file():
    found = {str(path.relative_to(ROOT)): references(docstrings(path)) for path in LIBRARY}
    assert {path: lines for path, lines in found.items() if lines} == {}


def _python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def test_the_front_page_has_install_and_a_quick_start_that_is_the_readmes():
    index = (DOC / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^## Install", index, flags=re.M)
    assert "pip install skdistill" in index and "[Installing](install.md)" in index
    assert re.search(r"^## Quick start", index, flags=re.M)
    quick = _python_blocks(index)[0]
    assert "CrossFitDistiller" in quick and "X_unlabeled=" in quick
    assert quick in _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_api_reference_has_no_command_line_entry_points_and_groups_by_kind():
    pages = skdistill_docs.api_pages()
    entries = skdistill_docs.api_entries(skdistill_docs.api_index())
    stray = sorted(e for e in entries if e.rsplit(".", 1)[1] in {"main", "run", "usage"})
    assert stray == []
    for kind in ["teachers", "students", "distillers", "metrics", "calibration", "complexity",
                 "model_selection", "inspection", "datasets", "onnx", "command_line"]:
        assert kind in pages and f"   {kind}" in pages["index"], kind
    assert "other" not in pages, ("a module of skdistill._SUBMODULES has no kind: name it in "
                                  "API_PAGES (doc/_ext/skdistill_docs.py)")
    assert "python -m benchmarks NAME" in pages["command_line"]


def test_class_pages_list_every_public_method_but_a_torch_modules_or_callbacks_own():
    unlisted = set(skdistill_docs.unlisted_methods())
    for listed in ["CrossFitDistiller.fit", "CrossFitDistiller.get_params", "MLPStudent.score",
                   "MLPStudent.set_params", "PruneCallback.prune", "TemperatureCalibrator.transform"]:
        assert listed not in unlisted, listed
    for left_out in ["MLP.to", "PruneCallback.on_batch_begin", "PruneCallback.get_params",
                     "ChecksumError.with_traceback", "MLP.forward"]:
        assert left_out in unlisted, left_out
