"""The documentation site's sources, checked without Sphinx (``make docs`` builds the site).

- Every public name (``skdistill.__all__`` and the ``__all__`` of every module of
  ``skdistill._SUBMODULES``) is in the API reference, which autosummary turns into one page per
  name; every module of the package is either public or named here as internal.
- Every ``{results-section}`` of the user guide names one section of ``benchmarks/RESULTS.md``.
- Every method page has the paper's idea, when to use it, its parameters and our figures.
- Every example is a gallery example that the full build runs, with a title, and saves (and
  leaves open for the gallery) the figures it draws.
"""
import ast
import doctest
import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import skdistill

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "doc"
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
sys.path.insert(0, str(DOC / "_ext"))
import skdistill_docs  # noqa: E402

# Modules of the package that are not public API, each with the reason.
INTERNAL_MODULES = {
    "engine": "the training engine; its extension points are described in doc/extending.md",
    "demo": "the code of `python -m skdistill demo`",
}
# The user guide's method pages (its "Methods" toctree).
METHOD_PAGES = ["students", "distillation", "crossfit", "teacher_quality", "gped",
                "bayesian_teachers", "ensemble", "pruning", "ranking"]


def expected_reference():
    """``module.name`` of every public name, where the reference should document it.

    Computed here from the package itself, not by the docs extension: a name in
    ``skdistill.__all__`` is documented under ``skdistill``, any other under its module.
    """
    top = {name: getattr(skdistill, name) for name in skdistill.__all__}
    names = {f"skdistill.{name}" for name in top}
    for short in skdistill._SUBMODULES:
        if short in skdistill_docs.COMMAND_LINE_MODULES:  # on the page "Command line"
            continue
        module = importlib.import_module(f"skdistill.{short}")
        public = getattr(module, "__all__", None)
        if public is None:  # no __all__: the classes and functions the module defines
            public = [name for name, obj in inspect.getmembers(module)
                      if not name.startswith("_") and inspect.getmodule(obj) is module
                      and (inspect.isclass(obj) or inspect.isfunction(obj))]
        for name in public:
            obj = getattr(module, name)
            names.add(f"skdistill.{name}" if top.get(name, None) is obj and name in top
                      else f"{module.__name__}.{name}")
    return names


def missing_from_reference(text):
    """Public names that the API reference ``text`` does not list."""
    return sorted(expected_reference() - skdistill_docs.api_entries(text))


def test_api_reference_lists_every_public_name_once():
    text = skdistill_docs.api_index()
    assert missing_from_reference(text) == []
    assert skdistill_docs.api_entries(text) == expected_reference()
    # A name listed twice would get two pages (a duplicate-object error in the build).
    listed = [line.strip() for line in text.splitlines() if line.startswith("   ")
              and not line.strip().startswith(":")]
    assert len(listed) == len(set(listed)), [n for n in listed if listed.count(n) > 1]


def test_the_command_line_page_shows_every_benchmark():
    from benchmarks import BENCHMARKS

    page = skdistill_docs.api_pages()["command_line"]
    for name in ["python -m skdistill demo", "--quick", "python -m benchmarks", *BENCHMARKS]:
        assert name in page, name


def test_a_name_left_out_of_the_reference_is_reported():
    text = skdistill_docs.api_index()
    dropped = "\n".join(line for line in text.splitlines()
                        if line.strip() != "expected_calibration_error")
    assert missing_from_reference(dropped) == ["skdistill.metrics.expected_calibration_error"]


def test_a_name_added_to_an_all_is_documented_without_editing_the_docs(monkeypatch):
    metrics = importlib.import_module("skdistill.metrics")

    def new_metric(y_true, y_prob):
        """A metric that a later change adds."""

    monkeypatch.setattr(metrics, "new_metric", new_metric, raising=False)
    monkeypatch.setattr(metrics, "__all__", [*metrics.__all__, "new_metric"])
    assert "skdistill.metrics.new_metric" in skdistill_docs.api_entries(
        skdistill_docs.api_index())


def test_every_estimator_has_one_page_under_skdistill():
    groups = {module: (own, reexported) for module, own, reexported in skdistill_docs.public_api()}
    assert groups["skdistill"][0] == list(skdistill.__all__)
    assert "CrossFitDistiller" in groups["skdistill.distillers"][1]
    assert "CrossFitDistiller" not in groups["skdistill.distillers"][0]


def test_every_estimator_of_the_registry_is_in_the_reference_by_kind():
    from skdistill.discovery import KINDS, all_estimators

    pages = skdistill_docs.api_pages()
    entries = skdistill_docs.api_entries(skdistill_docs.api_index())
    for kind in KINDS:
        for name, _ in all_estimators(kind):
            assert f"skdistill.{name}" in entries
            assert f"   {name}" in pages[f"{kind}s"].splitlines(), (name, kind)


def test_every_module_of_the_package_is_public_or_named_internal():
    modules = {m.name for m in pkgutil.iter_modules(skdistill.__path__)
               if not m.name.startswith("_")}
    unlisted = modules - set(skdistill._SUBMODULES) - set(INTERNAL_MODULES)
    assert not unlisted, (f"skdistill.{sorted(unlisted)}: add to _SUBMODULES in "
                          "skdistill/__init__.py (then the API reference documents its __all__)"
                          " or to INTERNAL_MODULES here")
    assert not set(INTERNAL_MODULES) & set(skdistill._SUBMODULES)


def test_every_documented_object_has_a_docstring():
    for module, own, _ in skdistill_docs.public_api():
        for name in own:
            obj = getattr(importlib.import_module(module), name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module}.{name} has no docstring"


# -- benchmarks/RESULTS.md sections -----------------------------------------------------------

RESULTS_BLOCK = re.compile(r"^```\{results-section\}[ \t]+(.+?)[ \t]*$", re.M)
PAGES = sorted(DOC.glob("*.md"))


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_results_section_a_page_names_is_in_results_md(page):
    for heading in RESULTS_BLOCK.findall(page.read_text()):
        body = skdistill_docs.results_section(heading)
        assert body.strip(), f"{page.name}: the section {heading!r} of RESULTS.md is empty"
        assert "results-section" not in body


def test_results_section_takes_the_section_down_to_the_next_heading_of_its_level():
    md = ("# R\n## A: one\na\n### A.1\nb ![fig](a.png) [raw](a.json) [web](https://x.org)\n"
          "## B\nc\n")
    assert skdistill_docs.results_section("A: one", md) == (
        "a\n### A.1\nb ![fig](../benchmarks/a.png) [raw](../benchmarks/a.json) "
        "[web](https://x.org)")
    # Included under a level-3 heading, its own sub-headings move down one level.
    assert "#### A.1" in skdistill_docs.results_section("A: one", md, level=3)
    with pytest.raises(ValueError, match="matches 0 headings"):
        skdistill_docs.results_section("C", md)
    with pytest.raises(ValueError, match="matches 2 headings"):
        skdistill_docs.results_section("A", "## A1\n## A2\n")


def test_a_results_block_is_replaced_by_its_section_at_the_level_above_it():
    page = ("# Page\n## Measured\n\n```{results-section} CrossFitDistiller: Dao et al.\n```\n"
            "\nafter\n")
    expanded = skdistill_docs.expand_results_sections(page)
    assert "{results-section}" not in expanded and expanded.endswith("\nafter\n")
    assert "### Test AUC, random-forest regressor students" in expanded
    assert "## CrossFitDistiller" not in expanded  # the page gives the heading


def test_the_docs_extension_doctests_pass():
    assert doctest.testmod(skdistill_docs).failed == 0


# -- the user guide ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", METHOD_PAGES)
def test_each_method_page_has_idea_usage_parameters_and_measured_figures(name):
    text = (DOC / f"{name}.md").read_text()
    for part in [r"\bidea\b", r"when to use it", r"parameters", r"measured figures"]:
        assert re.search(part, text, flags=re.I), f"{name}.md has no {part!r}"
    assert RESULTS_BLOCK.search(text), f"{name}.md includes no section of RESULTS.md"


def test_the_user_guide_lists_the_method_pages_and_picks_up_every_other_page(tmp_path):
    guide = (DOC / "user_guide.md").read_text()
    for name in METHOD_PAGES:
        assert re.search(rf"^{name}$", guide, flags=re.M), name
    assert "{other-pages}" in guide
    for name in ["index", "user_guide", "crossfit", "onnx"]:
        (tmp_path / f"{name}.md").write_text("# page\n")
    assert skdistill_docs.other_pages(guide, tmp_path) == ["onnx"]


# -- the gallery -------------------------------------------------------------------------------

def _conf():
    namespace = {"__file__": str(DOC / "conf.py")}
    exec(compile((DOC / "conf.py").read_text(), str(DOC / "conf.py"), "exec"), namespace)
    return namespace


def test_the_build_reads_nothing_from_the_network_and_runs_every_example():
    conf = _conf()
    assert not any("intersphinx" in ext for ext in conf["extensions"])
    assert not conf.get("intersphinx_mapping")
    gallery = conf["sphinx_gallery_conf"]
    assert Path(gallery["examples_dirs"]) == ROOT / "examples"
    for path in EXAMPLES:
        assert re.search(gallery["filename_pattern"], str(path)), path.name
        assert not re.search(gallery["ignore_pattern"], str(path)), path.name
    assert (ROOT / "examples" / "GALLERY_HEADER.rst").read_text().split("\n")[1].startswith("==")


def test_make_docs_builds_with_warnings_as_errors_without_running_the_gallery():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^SPHINX := .*-W .*doc doc/_build/html", makefile, flags=re.M)
    docs = re.search(r"^docs: .*\n\t(.*)", makefile, flags=re.M).group(1)
    full = re.search(r"^docs-full: .*\n\t(.*)", makefile, flags=re.M).group(1)
    assert "plot_gallery=0" in docs and "plot_gallery" not in full


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_docstring_opens_with_a_gallery_title(script):
    docstring = ast.get_docstring(ast.parse(script.read_text()), clean=False)
    title, underline, *rest = docstring.split("\n")
    assert title.strip() and set(underline) == {"="} and len(underline) >= len(title), \
        f"{script.name}: the docstring must open with a title underlined with '='"
    assert rest and rest[0] == "", f"{script.name}: a blank line must follow the title"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_that_draws_saves_its_figures_and_leaves_them_to_the_gallery(script):
    source = script.read_text()
    calls = {node.func.attr for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert "show" not in calls, f"{script.name}: save the figure instead of plt.show()"
    if "matplotlib" in source:
        assert "savefig" in calls, f"{script.name} draws but saves no figure"
        # The gallery's matplotlib scraper collects the figures still open at the end.
        assert "close" not in calls, f"{script.name}: a closed figure is missing from the gallery"
