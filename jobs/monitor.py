"""Monitor the champion: drift, delayed-label performance, data-quality trend, alerts, report.

The spark-submit entry point of `lakeboost run monitor`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "monitor", *sys.argv[1:]]))
