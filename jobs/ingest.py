"""Ingest configured sources into bronze Delta tables (files as streams, JDBC as snapshots).

The spark-submit entry point of `lakeboost run ingest`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "ingest", *sys.argv[1:]]))
