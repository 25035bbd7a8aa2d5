"""Benchmarks that reproduce the papers' tables: ``python -m skdistill.benchmarks NAME``.

Each benchmark is a module here with a ``main(argv)`` function; results are recorded in
``benchmarks/RESULTS.md`` with the command that produced them.
"""
import importlib
import os
from pathlib import Path

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


def run(name, argv=()):
    """Run benchmark ``name`` with command-line arguments ``argv``."""
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    module = importlib.import_module(f".{BENCHMARKS[name]}", __name__)
    return module.main(list(argv))
