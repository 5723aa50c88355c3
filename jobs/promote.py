"""Promote the challenger to champion if it wins on a pinned snapshot, or roll the champion back.

The spark-submit entry point of `lakeboost run promote`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "promote", *sys.argv[1:]]))
