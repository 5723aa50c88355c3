"""What every benchmark shares: its arguments and a demo config rooted in the work directory."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.logs import configure_logging


def bench_arguments(description: str,
                    extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """--rows, --days, --work, and whatever `extra` adds for one benchmark."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--work", default="/tmp/lakeboost-bench")
    if extra:
        extra(parser)
    args = parser.parse_args()
    configure_logging("WARNING")
    return args


def bench_config(args: argparse.Namespace, overrides: list[str] | None = None) -> tuple[LakeboostConfig, Path]:
    """The demo config at `--rows` (plus `overrides`), its lakehouse and landing under WORK/rows<N>."""
    work = Path(args.work) / f"rows{args.rows}"
    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    config = load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing",
                                   f"demo.rows={args.rows}", f"demo.days={args.days}", *(overrides or [])],
                         environ={**os.environ, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"})
    return config, work
