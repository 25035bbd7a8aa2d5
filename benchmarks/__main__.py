"""Command line: ``python -m benchmarks [NAME [options] | --help]``."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
