"""Sphinx configuration of the skdistill site: ``make docs`` (quick) or ``make docs-full``.

The build reads nothing from the network: no intersphinx, every theme asset is packaged.
"""
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOC / "_ext"))

import skdistill  # noqa: E402
import skdistill_docs  # noqa: E402

project = "skdistill"
author = "the skdistill developers"
copyright = "the skdistill developers, BSD-3-Clause"
release = version = skdistill.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "skdistill_docs",  # doc/_ext: the API index, RESULTS.md sections, the user guide's pages
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "_templates", "_ext", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
# The build must not reach the network (make docs runs offline).
intersphinx_mapping = {}

# -- markdown pages (MyST) ----------------------------------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# -- API reference: autosummary + numpydoc ------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"
# A method shows its own docstring only: an undocumented override (a torch module's forward,
# a skorch callback's on_epoch_end) is not listed with its parent's generic text.
autodoc_inherit_docstrings = False
# A class page lists every public method; a torch module's (a skorch callback's) only where the
# class overrides it, and an override only where it has a docstring of its own
# (doc/_templates/autosummary/class.rst).
autosummary_context = {"unlisted": skdistill_docs.unlisted_methods()}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
# The docstring checks a build enforces (warnings, so errors under -W); see
# numpydoc.validate for the codes. Every public object must have a docstring whose summary
# fits the numpydoc layout; parameter-by-parameter completeness is left to review.
numpydoc_validation_checks = {"GL08", "SS01", "SS06", "YD01", "GL02"}
# Data (dicts, tuples and constants) take their text from a ``#:`` comment, not a docstring.
numpydoc_validation_exclude = {r"\.(EXPECTATIONS|ESTIMATORS|COSTS|CNN_ARCHITECTURES|"
                               r"PERTURBATIONS|LOG_PROBA_FLOOR|NO_LABEL_INT64|"
                               r"NO_LABEL_STRING|KINDS|PAIRWISE_SURROGATES)$"}

# -- gallery: examples/ -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Every script is a gallery example and runs in the full build (make docs-full);
    # make docs passes -D plot_gallery=0 and runs none.
    "filename_pattern": r"\.py$",
    "ignore_pattern": r"__init__\.py",
    "image_scrapers": ("matplotlib",),
    "capture_repr": (),
    "download_all_examples": False,
    "show_memory": False,
    "abort_on_example_error": True,
    "reference_url": {"skdistill": None},
    # "Examples using X" on the API page of every class and function an example uses: the
    # templates of doc/_templates/autosummary include api/generated/<name>.examples, written
    # from the examples' code, so also when the gallery does not run (plot_gallery=0).
    "doc_module": ("skdistill",),
    "backreferences_dir": "api/generated",
    "min_reported_time": 1,
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdistill {release}"
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_show_sourcelink = False
html_static_path = []

