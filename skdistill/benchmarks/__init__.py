"""Benchmarks that reproduce the papers' tables: ``python -m skdistill.benchmarks NAME``.

Each benchmark is a module here with a ``main(argv)`` function; results are recorded in
``benchmarks/RESULTS.md`` with the command that produced them.
"""
import importlib

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


def run(name, argv=()):
    """Run benchmark ``name`` with command-line arguments ``argv``."""
    if name not in BENCHMARKS:
        raise SystemExit(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    module = importlib.import_module(f".{BENCHMARKS[name]}", __name__)
    return module.main(list(argv))
