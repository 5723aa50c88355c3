"""`python -m lakeboost.spark.prefetch [--env E]`: resolve the config's JVM packages, print jar paths."""

from __future__ import annotations

import argparse
import logging
import sys

from lakeboost.config import load_config
from lakeboost.errors import LakeboostError
from lakeboost.spark.session import session_jars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf-dir", default=None)
    parser.add_argument("--separator", default="\n", help="join the jar paths with this (',' for --jars)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    try:
        jars = session_jars(load_config(args.env, conf_dir=args.conf_dir).spark)
    except LakeboostError as exc:
        print(f"lakeboost: {exc}", file=sys.stderr)
        return exc.exit_code
    print(args.separator.join(jars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
