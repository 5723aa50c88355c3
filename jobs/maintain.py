"""Bronze personal-data retention, then OPTIMIZE (Z-ORDER) and VACUUM the configured tables.

The spark-submit entry point of `lakeboost run maintain`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "maintain", *sys.argv[1:]]))
