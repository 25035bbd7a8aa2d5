"""Command line: ``python -m skdistill demo [--dataset ...]``."""
import sys

USAGE = """usage: python -m skdistill COMMAND [options]

commands:
  demo        distil a random forest into an MLP student and print the comparison table
  benchmark   run a paper benchmark: python -m skdistill benchmark NAME [options]
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if command == "benchmark":
        from .benchmarks import run

        return run(rest[0] if rest else "", rest[1:])
    print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
