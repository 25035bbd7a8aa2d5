"""Command line: ``python -m skdistill.benchmarks NAME [options]``."""
import sys

from . import BENCHMARKS, run

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m skdistill.benchmarks NAME [options]\nbenchmarks: "
              + ", ".join(sorted(BENCHMARKS)))
        sys.exit(0)
    sys.exit(run(sys.argv[1], sys.argv[2:]))
