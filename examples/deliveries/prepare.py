"""Lay out the deliveries example's raw data as its sources would deliver it (seeded, idempotent).

- orders: one CSV file per day (shop, order_no, placed_at, delivered_at, weight_kg,
  distance_km). The key is composite: order numbers restart in every shop. `delivered_at`
  is empty while an order is on its way; it is the outcome the model predicts.
- shops: a table in a SQLite database, read over JDBC, one row per shop and version
  (`valid_from`): shops move between regions and change their courier.
- weather: hourly rain per region as JSON lines (aligned to an order by an as-of join).

Usage: python examples/deliveries/prepare.py LANDING_DIR [--orders N] [--seed S]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

START = dt.datetime(2026, 1, 1)
DAYS = 40
REGIONS = ["north", "south", "east", "west"]


def orders_frame(rng: np.random.Generator, n: int, shops: int) -> pd.DataFrame:
    placed = START + pd.to_timedelta(np.sort(rng.uniform(0, DAYS * 86400, n)).round(), unit="s")
    shop = rng.integers(1, shops + 1, n)
    weight = rng.gamma(2.0, 2.0, n).round(2)
    distance = rng.uniform(1, 400, n).round(1)
    # Heavy, far parcels and shops with a slow courier take longer; about a third are late.
    slow_shop = (shop % 5 == 0).astype(float)
    hours = rng.gamma(3.0, 12.0, n) + 0.08 * distance + 2.0 * weight + 30 * slow_shop
    delivered = placed + pd.to_timedelta(hours.round(), unit="h")
    frame = pd.DataFrame({"shop": [f"S{s:03d}" for s in shop], "placed_at": placed, "weight_kg": weight,
                          "distance_km": distance, "delivered_at": delivered})
    frame["order_no"] = frame.groupby("shop").cumcount() + 1
    cutoff = START + dt.timedelta(days=DAYS)
    frame.loc[frame["delivered_at"] > cutoff, "delivered_at"] = pd.NaT  # still on its way
    return frame[["shop", "order_no", "placed_at", "delivered_at", "weight_kg", "distance_km"]]


def write_orders(frame: pd.DataFrame, target: Path) -> None:
    target.mkdir(parents=True)
    text = frame.assign(placed_at=frame["placed_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
                        delivered_at=frame["delivered_at"].dt.strftime("%Y-%m-%d %H:%M:%S").fillna(""))
    for day, rows in text.groupby(frame["placed_at"].dt.date):
        rows.to_csv(target / f"orders_{day}.csv", index=False)


def write_shops(rng: np.random.Generator, shops: int, path: Path) -> None:
    rows = []
    for s in range(1, shops + 1):
        rows.append((f"S{s:03d}", REGIONS[s % 4], "fast" if s % 5 else "slow", "2025-12-01 00:00:00"))
        if rng.random() < 0.3:  # moved region mid-period
            moved = START + dt.timedelta(days=int(rng.integers(5, DAYS - 5)))
            rows.append((f"S{s:03d}", REGIONS[(s + 1) % 4], "fast" if s % 5 else "slow", f"{moved:%Y-%m-%d %H:%M:%S}"))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE shops (shop TEXT, region TEXT, courier TEXT, valid_from TEXT)")
        db.executemany("INSERT INTO shops VALUES (?, ?, ?, ?)", rows)


def write_weather(rng: np.random.Generator, target: Path) -> None:
    target.mkdir(parents=True)
    hours = pd.date_range(START - dt.timedelta(days=1), periods=(DAYS + 1) * 24, freq="h")
    with open(target / "weather.json", "w") as out:
        for region in REGIONS:
            rain = np.clip(rng.normal(0.3, 1.0, len(hours)), 0, None).round(2)
            for hour, mm in zip(hours, rain, strict=True):
                out.write(json.dumps({"region": region, "hour": f"{hour:%Y-%m-%d %H:%M:%S}", "rain_mm": mm}) + "\n")


def prepare(landing: Path, *, orders: int = 3000, seed: int = 11, shops: int = 40) -> pd.DataFrame:
    """Write the landing data (replacing what is there) and return the orders as written."""
    if landing.exists():
        shutil.rmtree(landing)
    landing.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    frame = orders_frame(rng, orders, shops)
    write_orders(frame, landing / "orders")
    write_shops(rng, shops, landing / "shops.db")
    write_weather(rng, landing / "weather")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    frame = prepare(args.landing, orders=args.orders, seed=args.seed)
    print(f"wrote {len(frame)} orders ({frame['delivered_at'].isna().sum()} not delivered yet) to {args.landing}")


if __name__ == "__main__":
    main()
