"""`python -m lakeboost.spark.prefetch [--env E]`: resolve the config's JVM packages, print jar paths
(`--count`: one line saying how many jars are ready and where, as `make bootstrap` prints it)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from lakeboost.config import load_config
from lakeboost.errors import LakeboostError
from lakeboost.spark.session import session_jars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf-dir", default=None)
    parser.add_argument("--separator", default="\n", help="join the jar paths with this (',' for --jars)")
    parser.add_argument("--count", action="store_true", help="print how many jars are ready and where, not each path")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    try:
        jars = session_jars(load_config(args.env, conf_dir=args.conf_dir).spark)
    except LakeboostError as exc:
        print(f"lakeboost: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.count:
        folders = sorted({os.path.dirname(jar) for jar in jars})
        print(f"lakeboost: {len(jars)} JVM package jars ready in {', '.join(folders) or '(none needed)'}")
    else:
        print(args.separator.join(jars))
    return 0


if __name__ == "__main__":
    sys.exit(main())
