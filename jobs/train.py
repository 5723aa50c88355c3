"""Train the model on the gold training set (tuned first when training.tune is set), or replay a run.

The spark-submit entry point of `lakeboost run train`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "train", *sys.argv[1:]]))
