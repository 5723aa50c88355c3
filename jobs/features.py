"""Build gold feature tables (incrementally by date partition) and the training set.

The spark-submit entry point of `lakeboost run features`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "features", *sys.argv[1:]]))
