"""Refine bronze into silver: conform, check contracts, protect PII, upsert, integrate.

The spark-submit entry point of `lakeboost run refine`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "refine", *sys.argv[1:]]))
