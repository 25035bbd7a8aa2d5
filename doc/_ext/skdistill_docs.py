"""Sphinx helpers of the skdistill site, importable without Sphinx (tests/test_docs.py does).

- :func:`public_api` lists the package's public names: ``skdistill.__all__`` and, for every
  module of ``skdistill._SUBMODULES``, its ``__all__`` (or, for a module without one, the
  classes and functions it defines whose names do not start with an underscore).
  :func:`api_index` turns them into ``doc/api/index.rst``, one ``autosummary`` table per
  module, so autosummary writes one page per public class and function. A module added to
  ``_SUBMODULES``, or a name added to an ``__all__``, is documented without editing the docs.
- :func:`results_section` cuts one section out of ``benchmarks/RESULTS.md`` by its heading.
  A page that holds the fenced block ``{results-section} <heading>`` gets that section in its
  place when Sphinx reads it, so the measured figures are never retyped.
- :func:`other_pages` lists the pages of ``doc/`` that no toctree of the user guide names;
  the line ``{other-pages}`` in a toctree of ``user_guide.md`` becomes them, so a new page
  is in the site's navigation without editing it.
"""
import importlib
import inspect
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1]
ROOT = DOC.parent
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
API_INDEX = DOC / "api" / "index.rst"


# -- the API reference ----------------------------------------------------------------------

def module_public_names(module):
    """Public names of ``module``: its ``__all__``, else the classes and functions it defines.

    Parameters
    ----------
    module : module
        An imported module.

    Returns
    -------
    list of str
        The names, in ``__all__``'s order or, without one, in definition order.
    """
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__]


def public_api():
    """The package's public names, grouped by the module they are documented under.

    Returns
    -------
    list of (str, list of str, list of str)
        ``(module, own, reexported)`` for ``skdistill`` and then every module of
        ``skdistill._SUBMODULES`` in alphabetical order. ``own`` are the names documented on a
        page of their own under that module; ``reexported`` are names of the module that are
        also in ``skdistill.__all__`` (the same object), documented once, under ``skdistill``.
    """
    import skdistill

    top = {name: getattr(skdistill, name) for name in skdistill.__all__}
    groups = [("skdistill", list(skdistill.__all__), [])]
    for short in sorted(skdistill._SUBMODULES):
        module = importlib.import_module(f"skdistill.{short}")
        own, reexported = [], []
        for name in module_public_names(module):
            same = name in top and top[name] is getattr(module, name)
            (reexported if same else own).append(name)
        groups.append((module.__name__, own, reexported))
    return groups


def _first_paragraph(module):
    doc = inspect.getdoc(module) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def api_index(groups=None):
    """The text of ``doc/api/index.rst`` for :func:`public_api`'s ``groups``.

    Parameters
    ----------
    groups : list or None, default=None
        What :func:`public_api` returns; ``None`` calls it.

    Returns
    -------
    str
        reStructuredText: one section per module, with an ``autosummary`` table (``:toctree:``
        so each name gets a page) of its own names and a plain table of re-exported ones.
    """
    if groups is None:
        groups = public_api()
    lines = [".. This file is written by doc/_ext/skdistill_docs.py at every build; "
             "do not edit.", "", ".. _api:", "", "API reference", "=============", "",
             "Every public class and function of skdistill, one page each, generated from "
             "its docstring. The estimators import from ``skdistill`` itself; every other "
             "name from its module (``from skdistill.metrics import "
             "expected_calibration_error``).", ""]
    for module_name, own, reexported in groups:
        module = importlib.import_module(module_name)
        lines += [f"``{module_name}``", "-" * (len(module_name) + 4), "",
                  f".. module:: {module_name}", "", f".. currentmodule:: {module_name}", ""]
        summary = _first_paragraph(module)
        if summary:
            lines += [summary, ""]
        if own:
            lines += [".. autosummary::", "   :toctree: generated/", "   :nosignatures:", ""]
            lines += [f"   {name}" for name in own] + [""]
        if reexported:
            lines += ["Also here, documented under ``skdistill``:", "",
                      ".. autosummary::", "   :nosignatures:", ""]
            lines += [f"   ~skdistill.{name}" for name in reexported] + [""]
    return "\n".join(lines)


def api_entries(text):
    """Fully qualified names that the ``autosummary`` tables of an API index list.

    Parameters
    ----------
    text : str
        reStructuredText such as :func:`api_index` returns.

    Returns
    -------
    set of str
        ``module.name`` for every entry, resolved against the ``currentmodule`` above it.
    """
    entries, module, in_table = set(), None, False
    for line in text.splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::")[1].strip()
        if line.startswith(".. autosummary::"):
            in_table = True
            continue
        if in_table and line.strip() and not line.startswith("   "):
            in_table = False
        entry = line.strip()
        if in_table and entry and not entry.startswith(":"):
            entry = entry.lstrip("~")
            entries.add(entry if entry.startswith("skdistill.") else f"{module}.{entry}")
    return entries


def write_api_index(path=API_INDEX):
    """Write :func:`api_index` to ``path`` if its text changed (Sphinx rebuilds on mtime)."""
    text = api_index()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


# -- sections of benchmarks/RESULTS.md -------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def _headings(lines):
    """``(index, level, title)`` of every markdown heading outside fenced code."""
    found, fenced = [], False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append((i, len(match.group(1)), match.group(2)))
    return found


def results_section(heading, text=None, link_prefix="../benchmarks/", level=None):
    """The body of the section of ``benchmarks/RESULTS.md`` whose heading starts ``heading``.

    Parameters
    ----------
    heading : str
        The section's title without its ``#`` marks, or the start of it; it must name exactly
        one heading (a title equal to it, else one title starting with it).
    text : str or None, default=None
        The markdown to search; ``None`` reads ``benchmarks/RESULTS.md``.
    link_prefix : str, default="../benchmarks/"
        Put before relative link and image targets, which RESULTS.md writes relative to its
        own folder, so they resolve from ``doc/``.
    level : int or None, default=None
        The level the section takes where it is included: its sub-headings are moved so that
        they sit one level below it. ``None`` keeps RESULTS.md's levels.

    Returns
    -------
    str
        The lines after the heading, up to the next heading of the same or a higher level.

    Raises
    ------
    ValueError
        If no heading, or more than one, matches ``heading``.

    Examples
    --------
    >>> md = "# R\\n## A: one\\nx ![p](a.png)\\n### A.1\\ny\\n## B\\nz\\n"
    >>> print(results_section("A:", md))
    x ![p](../benchmarks/a.png)
    ### A.1
    y
    """
    if text is None:
        text = RESULTS.read_text()
    lines = text.splitlines()
    headings = _headings(lines)
    matches = ([(i, lv) for i, lv, title in headings if title == heading]
               or [(i, lv) for i, lv, title in headings if title.startswith(heading)])
    if len(matches) != 1:
        titles = [title for _, _, title in headings]
        raise ValueError(f"results_section: heading={heading!r} matches {len(matches)} "
                         f"headings of RESULTS.md; expected exactly one of {titles}")
    start, own_level = matches[0]
    end = next((i for i, lv, _ in headings if i > start and lv <= own_level), len(lines))
    shift = 0 if level is None else level - own_level
    inner = {i: lv for i, lv, _ in headings if start < i < end}
    body = "\n".join("#" * (inner[i] + shift) + lines[i].lstrip("#") if i in inner else lines[i]
                     for i in range(start + 1, end)).strip("\n")

    def relink(match):
        target = match.group(2)
        if re.match(r"^([a-z]+:|#|/)", target):
            return match.group(0)
        return f"{match.group(1)}{link_prefix}{target}{match.group(3)}"

    return _LINK.sub(relink, body)


_RESULTS_BLOCK = re.compile(r"^```\{results-section\}[ \t]+(.+?)[ \t]*\n```[ \t]*$", re.M)


def expand_results_sections(source):
    """Replace every ``{results-section} <heading>`` fenced block by :func:`results_section`.

    The section takes the level of the page's last heading above the block, so that its own
    sub-headings nest under that heading.

    Parameters
    ----------
    source : str
        A markdown page.

    Returns
    -------
    str
        The page with each block replaced by its section.
    """
    def expand(match):
        above = _headings(source[:match.start()].splitlines())
        return results_section(match.group(1), level=above[-1][1] if above else None)

    return _RESULTS_BLOCK.sub(expand, source)


# -- pages no toctree names ------------------------------------------------------------------

_TOCTREE = re.compile(r"^```\{toctree\}\n(.*?)^```", re.M | re.S)


def other_pages(user_guide_source, doc_dir=DOC):
    """Pages of ``doc_dir`` that no toctree of the user guide names (besides the index pages).

    Parameters
    ----------
    user_guide_source : str
        The markdown of ``user_guide.md``.
    doc_dir : path, default=doc/
        The folder whose ``*.md`` pages are listed.

    Returns
    -------
    list of str
        Document names, sorted.
    """
    named = set()
    for block in _TOCTREE.findall(user_guide_source):
        named |= {line.strip() for line in block.splitlines()
                  if line.strip() and not line.startswith(":")}
    return sorted(p.stem for p in Path(doc_dir).glob("*.md")
                  if p.stem not in named | {"index", "user_guide"})


# -- the Sphinx extension ---------------------------------------------------------------------

def _config_inited(app, config):
    write_api_index()


def _source_read(app, docname, source):
    if "{results-section}" in source[0]:
        app.env.note_dependency(str(RESULTS))
        source[0] = expand_results_sections(source[0])
    if docname == "user_guide":
        source[0] = source[0].replace("{other-pages}", "\n".join(other_pages(source[0])))


def setup(app):
    """Register the API index writer and the source rewrites with Sphinx."""
    # Before Sphinx lists the sources and autosummary reads them for its tables.
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
