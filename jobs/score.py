"""Score gold features with a registered model (default: the champion) into the predictions table.

The spark-submit entry point of `lakeboost run score`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "score", *sys.argv[1:]]))
