"""Sphinx helpers of the skdistill site, importable without Sphinx (tests/test_docs.py does).

- :func:`public_api` lists the package's public names: ``skdistill.__all__`` (the estimators
  that ``skdistill.discovery.all_estimators`` lists) and, for every module of
  ``skdistill._SUBMODULES``, its ``__all__`` (or, for a module without one, the classes and
  functions it defines whose names do not start with an underscore).
  :func:`api_pages` turns them into the pages of ``doc/api/``: one page per kind of object
  (:data:`API_PAGES`: teachers, students, distillers, metrics, ...), each with one
  ``autosummary`` table per module, so autosummary writes one page per public class and
  function, and the page "Command line" (:data:`COMMAND_LINE_MODULES`), which shows the
  programs' usage instead of their functions. A module added to ``_SUBMODULES``, or a name
  added to an ``__all__``, is documented without editing the docs.
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


#: The API reference's pages, one per kind of object: ``(page, title, intro, modules)``. A page
#: lists, for each of its modules, the estimators ``skdistill`` re-exports from it (documented
#: as ``skdistill.Name``) and then the module's own public names. A module of
#: ``skdistill._SUBMODULES`` that no page names goes on the page "Other modules".
API_PAGES = [
    ("teachers", "Teachers",
     "Models whose probabilities, or posterior samples, a student learns from. Any fitted "
     "scikit-learn classifier is a teacher too.", ["teachers"]),
    ("students", "Students",
     "The small networks a distiller trains, usable alone as scikit-learn classifiers.",
     ["students"]),
    ("distillers", "Distillers",
     "Meta-estimators that fit a teacher and train a student on its targets, the "
     "synthetic transfer sets (MUNGE, Gaussian noise) they can draw for it, and the chunked "
     "transfer sets beyond memory they stream.",
     ["distillers", "augment", "streaming"]),
    ("metrics", "Metrics",
     "Calibration and uncertainty metrics, and scorers for model selection.", ["metrics"]),
    ("calibration", "Calibration",
     "Post-hoc calibration of a teacher's or a student's probabilities.", ["calibration"]),
    ("complexity", "Complexity",
     "Size and speed of teachers and students: parameters, FLOPs, inference time.",
     ["complexity"]),
    ("model_selection", "Model selection",
     "Cost scorers for a search and its Pareto frontier of cost against score.",
     ["model_selection"]),
    ("pruning", "Pruning",
     "Group-lasso pruning of a student's network down to a smaller plain network.",
     ["pruning"]),
    ("inspection", "Inspection",
     "Reports and plots that judge a teacher before it is distilled.", ["inspection"]),
    ("datasets", "Datasets", "Data loaders, occlusion and synthetic data.", ["datasets"]),
    ("discovery", "Discovery",
     "The list of skdistill's estimators, by kind (teacher, student, distiller), for tools and "
     "tests that cover every one.", ["discovery"]),
    ("onnx", "ONNX export",
     "skl2onnx converters for students and distillers (needs the ``onnx`` extra).", ["onnx"]),
    ("extending", "Contracts, networks, losses and samplers (for extenders)",
     "The contracts a teacher, a student and an objective follow, and the torch modules, "
     "losses over tensors, samplers, posterior expectations and input perturbations that "
     "the estimators are built from; for writing your own teacher, objective or student.",
     ["base", "nets", "losses", "samplers", "expectations", "perturbations"]),
]

#: Command-line programs of the source checkout, not of the installed package (``benchmarks``:
#: the harness at the checkout's root): the page "Command line" shows their usage after the
#: package's own; their functions (``main``, ``run``, ``usage``) are not in the API reference.
COMMAND_LINE_MODULES = ["benchmarks"]


def _page_modules(groups):
    """``[(page, title, intro, [group, ...]), ...]``: :data:`API_PAGES` filled with ``groups``.

    Every group but ``skdistill`` and the command-line modules is on exactly one page: those
    that :data:`API_PAGES` does not name go on a last page, "Other modules", as do the names of
    ``skdistill.__all__`` that no module re-exports.
    """
    by_module = {module: (own, reexported) for module, own, reexported in groups}
    placed = {"skdistill"}
    pages = []
    for page, title, intro, shorts in API_PAGES:
        modules = [f"skdistill.{short}" for short in shorts
                   if f"skdistill.{short}" in by_module]
        placed |= set(modules)
        pages.append((page, title, intro, [(m, *by_module[m]) for m in modules]))
    others = [(m, own, re_) for m, own, re_ in groups if m not in placed]
    reexported = {name for _, _, names in groups for name in names}
    loose = [name for name in by_module.get("skdistill", ([], []))[0] if name not in reexported]
    if loose:
        others.insert(0, ("skdistill", [], loose))
    if others:
        pages.append(("other", "Other modules", "", others))
    return pages


def _module_section(module_name, own, reexported):
    module = importlib.import_module(module_name)
    lines = [f"``{module_name}``", "-" * (len(module_name) + 4), ""]
    if module_name != "skdistill":
        lines += [f".. module:: {module_name}", ""]
    summary = _first_paragraph(module)
    if summary and module_name != "skdistill":
        lines += [summary, ""]
    if reexported:
        lines += [".. currentmodule:: skdistill", "", ".. autosummary::",
                  "   :toctree: generated/", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in reexported] + [""]
    if own:
        lines += [f".. currentmodule:: {module_name}", "", ".. autosummary::",
                  "   :toctree: generated/", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in own] + [""]
    return lines


_GENERATED = ".. This file is written by doc/_ext/skdistill_docs.py at every build; do not edit."


def _help_text(main, argv):
    """What ``main(argv)`` prints (an argparse ``--help`` exits), at a fixed width."""
    import contextlib
    import io
    import os

    out, columns = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out):
            try:
                main(argv)
            except SystemExit:
                pass
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().strip("\n")


def command_line_page():
    """The text of the page "Command line": the usage of ``python -m skdistill`` and its commands.

    Returns
    -------
    str
        reStructuredText with the help texts of ``python -m skdistill``, of its ``demo`` and
        of the checkout's ``python -m benchmarks`` (one line per benchmark), as the programs
        print them.
    """
    from skdistill import __main__ as cli
    from skdistill import demo

    def block(text):
        return [".. code-block:: text", ""] + [f"   {line}".rstrip() for line in
                                               text.splitlines()] + [""]

    lines = [_GENERATED, "", ".. _command_line:", "", "Command line", "============", "",
             "skdistill's programs run as ``python -m skdistill COMMAND``; these are their "
             "``--help`` texts.", "", "``python -m skdistill``", "-----------------------", ""]
    lines += block(_help_text(cli.main, ["--help"]))
    lines += ["``python -m skdistill demo``", "----------------------------", ""]
    lines += block(_help_text(demo.main, ["--help"]))
    for name in COMMAND_LINE_MODULES:
        module = importlib.import_module(name)  # from the checkout's root (on sys.path)
        title = f"``python -m {name}`` (source checkout)"
        lines += [title, "-" * len(title), ""]
        summary = _first_paragraph(module)
        if summary:
            lines += [summary, ""]
        if hasattr(module, "usage"):
            lines += block(module.usage())
    return "\n".join(lines)


def api_pages(groups=None):
    """The pages of the API reference, by document name under ``doc/api/``.

    Parameters
    ----------
    groups : list or None, default=None
        What :func:`public_api` returns; ``None`` calls it.

    Returns
    -------
    dict of str to str
        reStructuredText of ``index`` (the kinds, in a toctree), of one page per kind of
        :data:`API_PAGES` (its modules, each with an ``autosummary`` table, ``:toctree:`` so
        each name gets a page) and of ``command_line``.
    """
    if groups is None:
        groups = public_api()
    pages = _page_modules(groups)
    index = [_GENERATED, "", ".. _api:", "", "API reference", "=============", "",
             ".. module:: skdistill", "",
             "Every public class and function of skdistill, one page each, generated from "
             "its docstring, grouped by kind. The estimators import from ``skdistill`` itself; "
             "every other name from its module (``from skdistill.metrics import "
             "expected_calibration_error``).", ""]
    for page, title, intro, _ in pages:
        index += [f"- :doc:`{page}`" + (f": {intro}" if intro else "")]
    index += ["- :doc:`command_line`: ``python -m skdistill`` and its commands, and the "
              "checkout's ``python -m benchmarks``.", "",
              ".. toctree::", "   :hidden:", "   :maxdepth: 2", ""]
    index += [f"   {page}" for page, *_ in pages] + ["   command_line", ""]
    texts = {"index": "\n".join(index)}
    for page, title, intro, modules in pages:
        lines = [_GENERATED, "", title, "=" * len(title), ""]
        if intro:
            lines += [intro, ""]
        for group in modules:
            lines += _module_section(*group)
        texts[page] = "\n".join(lines)
    texts["command_line"] = command_line_page()
    return texts


def api_index(groups=None):
    """The text of every page of the API reference, one after the other.

    Parameters
    ----------
    groups : list or None, default=None
        What :func:`public_api` returns; ``None`` calls it.

    Returns
    -------
    str
        The pages of :func:`api_pages`, joined: what :func:`api_entries` reads to tell which
        names the reference lists.
    """
    return "\n\n".join(api_pages(groups).values())


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


def write_api_index(folder=API_INDEX.parent):
    """Write :func:`api_pages` into ``folder`` where their text changed (Sphinx rebuilds on mtime).

    A page of an earlier build that is no longer one of them is removed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pages = api_pages()
    for stale in set(folder.glob("*.rst")) - {folder / f"{name}.rst" for name in pages}:
        if stale.read_text().startswith(_GENERATED):
            stale.unlink()
    for name, text in pages.items():
        path = folder / f"{name}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return folder


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


# -- class pages ------------------------------------------------------------------------------

#: Bases whose methods a class page leaves out, though the class inherits them: a torch
#: module's, a skorch callback's and an exception's methods are documented by their projects.
#: (The class template's ``:inherited-members:`` names the same classes.)
FOREIGN_BASES = ["Module", "Callback", "BaseException"]


def unlisted_methods(groups=None):
    """``Class.method`` of the public methods that a class page does not list.

    They are those autodoc does not document on the page either: the methods a class inherits
    from one of :data:`FOREIGN_BASES` (a torch module's ``to``, a skorch callback's
    ``on_batch_end``), and the methods without a docstring of their own (autodoc's inherited
    docstrings are off), such as overrides of a torch module's ``forward``, which their base
    documents.

    Parameters
    ----------
    groups : list or None, default=None
        What :func:`public_api` returns; ``None`` calls it.

    Returns
    -------
    list of str
        Sorted ``Class.method`` names, for the class template (``autosummary_context``).
    """
    if groups is None:
        groups = public_api()
    found = set()
    for module_name, own, reexported in groups:
        module = importlib.import_module(module_name)
        for name in own + reexported:
            cls = getattr(module, name)
            if not inspect.isclass(cls):
                continue
            for attr in dir(cls):
                member = getattr(cls, attr, None)
                if attr.startswith("_") or not callable(member) or inspect.isclass(member):
                    continue
                owner = next((k for k in cls.__mro__ if attr in vars(k)), cls)
                if (owner.__name__ in FOREIGN_BASES
                        or not (getattr(member, "__doc__", None) or "").strip()):
                    found.add(f"{name}.{attr}")
    return sorted(found)


def _is_skdistill(obj):
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "skdistill"


def skip_member(app, what, name, obj, skip, options):
    """Leave out the metadata-routing methods scikit-learn supplies (``set_fit_request`` ...).

    A ``get_metadata_routing`` that skdistill writes itself is documented.
    """
    routing = name == "get_metadata_routing" or (name.startswith("set_")
                                                 and name.endswith("_request"))
    if routing and not _is_skdistill(obj):
        return True
    return None


_FOREIGN_ROLE = re.compile(r":(ref|term|doc):`([^`<]*?)\s*(?:<[^`>]*>)?`")


def plain_foreign_roles(app, what, name, obj, options, lines):
    """Turn the ``:ref:``/``:term:`` roles of an inherited scikit-learn docstring into text.

    ``score`` or ``set_params`` documented on a class page point at labels of scikit-learn's
    site, which this site does not have (the build would warn).
    """
    if not _is_skdistill(obj):
        lines[:] = [_FOREIGN_ROLE.sub(lambda m: m.group(2), line) for line in lines]


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
    """Register the API pages' writer, the source rewrites and the autodoc hooks with Sphinx."""
    # Before Sphinx lists the sources and autosummary reads them for its tables.
    app.connect("config-inited", _config_inited)
    app.connect("source-read", _source_read)
    app.connect("autodoc-skip-member", skip_member)
    app.connect("autodoc-process-docstring", plain_foreign_roles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
