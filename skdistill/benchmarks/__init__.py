"""Benchmarks that reproduce the papers' tables: ``python -m skdistill.benchmarks NAME``.

Each benchmark is a module here with a ``main(argv)`` function; results are recorded in
``benchmarks/RESULTS.md`` with the command that produced them.
"""
import importlib
import os
from pathlib import Path

import numpy as np

from ..metrics import expected_calibration_error, negative_log_likelihood

#: The checkout's root (benchmarks write recorded results under its ``benchmarks/``).
REPO = Path(__file__).resolve().parents[2]

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
    "gpu": "gpu",
}


def resolve_data_home(data_home=None):
    """Data folder of a benchmark: ``data_home``, else ``$SKDISTILL_DATA``, else the checkout's
    ``../shared/data`` where it exists, else ``None`` (the loaders' own default)."""
    data_home = data_home or os.environ.get("SKDISTILL_DATA")
    if data_home is None and (REPO.parent / "shared" / "data").is_dir():
        data_home = str(REPO.parent / "shared" / "data")
    return data_home


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
    """Run benchmark ``name`` with command-line arguments ``argv``."""
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    module = importlib.import_module(f".{BENCHMARKS[name]}", __name__)
    return module.main(list(argv))
