"""`python -m lakeboost`: the lakeboost command (lakeboost.cli)."""

import sys

from lakeboost.cli import main

sys.exit(main())
