"""Run the lakeboost pipeline (all configured steps, or --from/--to/--only) as one job.

The spark-submit entry point of `lakeboost run pipeline`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "pipeline", *sys.argv[1:]]))
