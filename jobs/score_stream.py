"""Score live events (bronze stream) with the champion as they arrive; exactly once per event.

The spark-submit entry point of `lakeboost run score_stream`: the same options (`--help` lists them).
"""

import sys

from lakeboost.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "score_stream", *sys.argv[1:]]))
