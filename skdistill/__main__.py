"""Command line: ``python -m skdistill demo [options]``; ``--help`` for usage."""
import sys

USAGE = """usage: python -m skdistill COMMAND [options]

commands:
  demo        distil a 500-tree forest into a small network with CrossFitDistiller and compare
              it with the forest, plain KD and the same network on labels (python -m skdistill
              demo --help)

python -m skdistill COMMAND --help shows the options of COMMAND. The benchmarks that reproduce
the papers' tables are not installed: they run from a source checkout, in its root, as
python -m benchmarks NAME [options].
"""
# What `python -m skdistill benchmarks` says: the benchmarks left the installed package.
BENCHMARKS_MOVED = ("python -m skdistill: the benchmarks are not part of the installed package; "
                    "from the root of a source checkout run python -m benchmarks NAME [options] "
                    "(python -m benchmarks --help lists them).")


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
        print(BENCHMARKS_MOVED, file=sys.stderr)
        return 2
    print(f"python -m skdistill: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
