"""Benchmarks that reproduce the papers' tables: ``python -m benchmarks NAME`` from the checkout.

The harness lives beside its recorded results, at the root of the source checkout, and is not
part of the installed package: run it from the checkout's root (where ``import benchmarks``
finds this folder) with skdistill installed, e.g. ``pip install -e .``. Each benchmark is a
module here with a ``main(argv)`` function and a module docstring whose first line says what
it measures; results are recorded in ``benchmarks/RESULTS.md`` with the command that produced
them. ``python -m benchmarks --help`` lists them and ``python -m benchmarks NAME --help`` shows
a benchmark's options.
"""
import ast
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from skdistill.metrics import expected_calibration_error, negative_log_likelihood

#: The checkout's root (benchmarks write recorded results under its ``benchmarks/``).
REPO = Path(__file__).resolve().parents[1]

#: The command line and the helpers benchmarks share (``scores``, ``mean_sqdist``, ``mean_sd``,
#: ``group_rows`` are internal to the benchmark modules and left out of the reference).
__all__ = ["BENCHMARKS", "main", "run", "usage", "summary", "resolve_data_home"]

#: benchmark name -> module (relative to this package) holding ``main(argv)``.
BENCHMARKS = {
    "students": "students",
    "dao_tabular": "dao_tabular",
    "gped_mnist": "gped_mnist",
    "latentbe": "latentbe",
    "pruning": "pruning",
    "teacher_quality": "teacher_quality",
    "bayes_teachers": "bayes_teachers",
    "onnx": "onnx_latency",
    "serving": "serving",
    "tables": "tables",
    "gpu": "gpu",
    "data_layer": "data_layer",
    "menon": "menon",
    "scale": "scale",
}


PROG = "python -m benchmarks"


def summary(name):
    """The first line of benchmark ``name``'s module docstring, read without importing it.

    Examples
    --------
    >>> from benchmarks import summary
    >>> summary("students")
    'Student overhead: MLPStudent fit and predict_proba against a bare torch loop, same process.'
    """
    spec = importlib.util.find_spec(f".{BENCHMARKS[name]}", __name__)
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""
    return doc.strip().split("\n", 1)[0]


def usage(prog=PROG):
    """The benchmarks' usage text: the command line and one line per benchmark.

    Examples
    --------
    >>> from benchmarks import usage
    >>> print(usage().splitlines()[0])
    usage: python -m benchmarks NAME [options]
    """
    width = max(map(len, BENCHMARKS))
    lines = [f"usage: {prog} NAME [options]", "",
             "Reproduce a table of a paper; the results, with the command that made them, are",
             "in benchmarks/RESULTS.md.", "", "benchmarks:"]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in sorted(BENCHMARKS)]
    lines += ["", f"{prog} NAME --help shows the options of benchmark NAME."]
    return "\n".join(lines)


def main(argv=None, prog=PROG):
    """Command line: ``NAME [options]`` runs a benchmark, ``--help`` lists them.

    Returns the exit status: 0 for the list, 2 for an unknown benchmark (the list goes to
    stderr), else the benchmark's own.

    Examples
    --------
    >>> from benchmarks import main
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: python -m benchmarks NAME [options]
    ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(prog))
        return 0
    if argv[0] not in BENCHMARKS:
        print(f"{prog}: unknown benchmark {argv[0]!r}\n\n{usage(prog)}", file=sys.stderr)
        return 2
    return run(argv[0], argv[1:])
def resolve_data_home(data_home=None):
    """The data folder a benchmark reads.

    ``data_home`` if given, else ``$SKDISTILL_DATA``, else the checkout's ``../shared/data``
    where it exists, else ``None`` (then the loaders use their own default,
    ``~/skdistill_data``).

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder given on the command line (``--data-home``).

    Returns
    -------
    data_home : str or path-like or None

    Examples
    --------
    >>> from benchmarks import resolve_data_home
    >>> resolve_data_home("/data/skdistill")
    '/data/skdistill'
    """
    data_home = data_home or os.environ.get("SKDISTILL_DATA")
    if data_home is None and (REPO.parent / "shared" / "data").is_dir():
        data_home = str(REPO.parent / "shared" / "data")
    return data_home


def mean_sd(values, digits=4):
    """``"mean ± sd"`` of ``values`` to ``digits`` places: the value alone for one, ``"n/a"``
    for none (the benchmarks' tables over seeds)."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def scores(y, proba, prefix, bayes=None):
    """Accuracy, NLL, ECE (and :func:`mean_sqdist` to ``bayes``) under keys ``prefix_*``."""
    out = {f"{prefix}_accuracy": float(np.mean(proba.argmax(axis=1) == y)),
           f"{prefix}_nll": negative_log_likelihood(y, proba),
           f"{prefix}_ece": expected_calibration_error(y, proba)}
    if bayes is not None:
        out[f"{prefix}_sqdist"] = mean_sqdist(proba, bayes)
    return out


def mean_sqdist(proba, bayes):
    """Mean over rows of ``||proba - bayes||^2``."""
    return float(np.mean(np.sum((proba - bayes) ** 2, axis=1)))


def group_rows(rows, key):
    """``{row[key]: [rows]}`` in first-seen order (e.g. one group of seeds per teacher)."""
    groups = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


def run(name, argv=()):
    """Run benchmark ``name`` with command-line arguments ``argv``; its exit status.

    ``argv`` may be ``["--help"]``: the benchmark prints its options and raises
    ``SystemExit(0)``, as any argparse program does.
    """
    if name not in BENCHMARKS:
        raise ValueError(f"run: parameter name={name!r} is invalid; expected one of "
                         f"{sorted(BENCHMARKS)}.")
    module = importlib.import_module(f".{BENCHMARKS[name]}", __name__)
    return module.main(list(argv))
