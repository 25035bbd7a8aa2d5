"""Menon et al.'s applications: distilled bipartite ranking and teacher-corrected sampled softmax.

``python -m benchmarks menon ranking [options]`` runs the ranking part
(``benchmarks/menon_ranking.py``), ``python -m benchmarks menon softmax [options]`` the
sampled-softmax part (``benchmarks/menon_softmax.py``); ``--help`` after the part's name shows
its options. Results are recorded in ``benchmarks/RESULTS.md``.
"""
import argparse
import importlib

#: part name -> module of this package holding its ``main(argv)``.
PARTS = {"ranking": "menon_ranking", "softmax": "menon_softmax"}


def main(argv):
    """Run the part named by ``argv[0]`` with the remaining arguments; its exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks menon",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=sorted(PARTS), help="which application to measure")
    parser.add_argument("options", nargs=argparse.REMAINDER,
                        help="the part's own options (PART --help lists them)")
    args = parser.parse_args(argv[:1])
    module = importlib.import_module(f".{PARTS[args.part]}", __package__)
    return module.main(list(argv[1:]))
