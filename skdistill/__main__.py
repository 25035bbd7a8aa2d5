"""Command line: ``python -m skdistill demo|benchmarks [options]``; ``--help`` for usage."""
import sys

USAGE = """usage: python -m skdistill COMMAND [options]

commands:
  demo        distil a 500-tree forest into a small network with CrossFitDistiller and compare
              it with the forest, plain KD and the same network on labels (python -m skdistill
              demo --help)
  benchmarks  run a benchmark that reproduces a paper's table: python -m skdistill benchmarks
              NAME [options]; python -m skdistill benchmarks --help lists them
              ("benchmark" works too)

python -m skdistill COMMAND --help shows the options of COMMAND.
"""


def main(argv=None):
    """Run a command; returns the exit status (0 for ``--help``, 2 for an unknown command).

    Examples
    --------
    >>> from skdistill.__main__ import main
    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: python -m skdistill COMMAND [options]
    ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if command in ("benchmarks", "benchmark"):
        from .benchmarks import main as benchmarks_main

        return benchmarks_main(rest, prog="python -m skdistill benchmarks")
    print(f"python -m skdistill: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
