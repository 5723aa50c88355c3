"""Customers and merchants: small slowly-changing dimensions drawn with numpy, written as files.

Each dimension comes in two shapes: the SCD rows that land as a source (SQLite / Parquet), and
a one-row-per-key *profile* the Spark simulation broadcasts, holding both versions side by side
plus hidden behaviour (typical spend, cards, devices) that never lands anywhere.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from card_fraud.scenario import (
    CATEGORIES,
    COUNTRIES,
    FIRST_NAMES,
    LAST_NAMES,
    MERCHANT_WORDS,
    PHONE_PREFIX,
    SEGMENTS,
)

DAY = 86_400
NO_CHANGE = 1 << 62  # "valid forever": a change time no event ever reaches
CUSTOMER_CHANGE_SHARE = 0.05
MERCHANT_CHANGE_SHARE = 0.10
_MERCHANT_SUFFIXES = ("Ltd", "& Co", "Store", "Group", "Shop", "Hub")


@dataclass(frozen=True)
class Period:
    """The generated span: `days` whole UTC days from `start` (epoch seconds of midnight)."""

    start: int
    days: int

    def mid_period(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Change times inside the middle 60% of the period, so both versions see traffic."""
        return self.start + (rng.uniform(0.2, 0.8, n) * self.days * DAY).astype(np.int64)

    def before_start(self, rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
        """First-version times `low`..`high` days before the period starts."""
        return self.start - (rng.uniform(low, high, n) * DAY).astype(np.int64)


@dataclass(frozen=True)
class Dimension:
    rows: pd.DataFrame  # SCD rows as they land in the source
    profile: pd.DataFrame  # one row per key, both versions side by side, for the simulation


def _iso(seconds: np.ndarray) -> list[str]:
    return list(pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%d %H:%M:%S"))


def _luhn_complete(bodies: np.ndarray) -> list[str]:
    """Append the Luhn check digit to 15-digit card numbers, so they look like real PANs."""
    digits = np.array([[int(c) for c in f"{b:015d}"] for b in bodies], dtype=np.int64)
    doubled = digits[:, ::-1].copy()
    doubled[:, 0::2] *= 2  # from the right, every other digit of the body is doubled
    doubled[doubled > 9] -= 9
    check = (10 - doubled.sum(axis=1) % 10) % 10
    return [f"{b:015d}{c}" for b, c in zip(bodies, check, strict=True)]


def _cards(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], np.ndarray]:
    """One or two distinct card numbers per customer."""
    n_cards = 1 + (rng.random(n) < 0.3).astype(np.int64)
    # k -> (k * c + offset) mod 10**14 with c coprime to 10 is a bijection: numbers are unique.
    # Python ints: k * c overflows int64 for large demos.
    offset = int(rng.integers(10**14))
    serial = [(k * 61_803_398_874_989 + offset) % 10**14 for k in range(2 * n)]
    issuer = np.where(rng.random(2 * n) < 0.6, 4, 5).astype(np.int64)
    cards = _luhn_complete(issuer * 10**14 + np.array(serial, dtype=np.int64))
    first, second = cards[:n], cards[n:]
    second = [s if c == 2 else f for f, s, c in zip(first, second, n_cards, strict=True)]
    return first, second, n_cards


def _devices(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    first = [f"dev-{x:010x}" for x in rng.integers(16**10, size=n)]
    other = [f"dev-{x:010x}" for x in rng.integers(16**10, size=n)]
    has_two = rng.random(n) < 0.4
    return first, [o if t else f for f, o, t in zip(first, other, has_two, strict=True)]


def _people(rng: np.random.Generator, ids: np.ndarray) -> pd.DataFrame:
    first = rng.choice(FIRST_NAMES, ids.size)
    last = rng.choice(LAST_NAMES, ids.size)
    # id -> (id * 3**18) mod 10**9 is a bijection: phone numbers are unique per customer.
    numbers = (ids * 387_420_489 + 7_000_000) % 10**9
    return pd.DataFrame({
        "customer_id": ids,
        "full_name": [f"{f} {la}" for f, la in zip(first, last, strict=True)],
        "email": [f"{f.lower()}.{la.lower()}{i}@example.com"
                  for f, la, i in zip(first, last, ids, strict=True)],
        "phone_number": [f"{x // 10**6:03d} {x % 10**6:06d}" for x in numbers],
    })


def _home_countries(rng: np.random.Generator, n: int, moves: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Indices into COUNTRIES of each customer's home, before and after a (possible) move."""
    weights = np.array([c.home_weight for c in COUNTRIES])
    homes = np.flatnonzero(weights > 0)
    rank_1 = rng.choice(homes.size, n, p=weights[homes] / weights[homes].sum())
    # A move goes to another home country: step 1..k-1 places round the list.
    rank_2 = np.where(moves, (rank_1 + rng.integers(1, homes.size, n)) % homes.size, rank_1)
    return homes[rank_1], homes[rank_2]


def _customer_rows(people: pd.DataFrame, versions: dict[str, np.ndarray]) -> pd.DataFrame:
    """SCD rows: version 1 for everyone, version 2 for customers who changed."""
    prefixes = [PHONE_PREFIX[COUNTRIES[h].code] for h in versions["home_1"]]
    base = people.assign(
        phone=[p + x for p, x in zip(prefixes, people["phone_number"], strict=True)],
        segment=[SEGMENTS[s][0] for s in versions["segment"]],
    )
    changed = versions["change_at"] != NO_CHANGE
    first = base.assign(home_country=[COUNTRIES[h].code for h in versions["home_1"]],
                        credit_limit=versions["limit_1"], valid_from=_iso(versions["valid_1"]))
    second = base.assign(home_country=[COUNTRIES[h].code for h in versions["home_2"]],
                         credit_limit=versions["limit_2"])[changed]
    second["valid_from"] = _iso(versions["change_at"][changed])
    rows = (pd.concat([first, second], ignore_index=True)
            .sort_values(["customer_id", "valid_from"], kind="stable", ignore_index=True))
    rows["updated_at"] = rows["valid_from"]
    return rows[["customer_id", "full_name", "email", "phone", "home_country", "segment",
                 "credit_limit", "valid_from", "updated_at"]]


def build_customers(rng: np.random.Generator, n: int, period: Period) -> Dimension:
    """Customers with a first version before the period and ~5% changing mid-period.

    Half of the changes move the customer to another home country, half change the credit
    limit; the new version is valid from a time inside the period (updated_at = valid_from).
    """
    ids = np.arange(1, n + 1, dtype=np.int64)
    changes = rng.random(n) < CUSTOMER_CHANGE_SHARE
    moves = changes & (rng.random(n) < 0.5)
    home_1, home_2 = _home_countries(rng, n, moves)
    segment = rng.choice(len(SEGMENTS), n, p=[s[1] for s in SEGMENTS])
    base_limit = np.array([s[2] for s in SEGMENTS])[segment]
    limit_1 = np.maximum(100.0, np.round(base_limit * rng.lognormal(0, 0.3, n) / 100) * 100)
    new_limit = np.round(limit_1 * rng.choice([0.6, 1.5, 2.0], n) / 100) * 100
    versions = {
        "home_1": home_1, "home_2": home_2, "segment": segment, "limit_1": limit_1,
        "limit_2": np.where(changes & ~moves, new_limit, limit_1),
        "valid_1": period.before_start(rng, n, 30, 1500),
        "change_at": np.where(changes, period.mid_period(rng, n), NO_CHANGE),
    }
    people = _people(rng, ids)
    card_1, card_2, n_cards = _cards(rng, n)
    device_1, device_2 = _devices(rng, n)
    # Premium customers spend more, students less: the model must learn per-customer levels.
    spend_scale = np.select([segment == 1, segment == 3], [1.8, 0.5], 1.0)
    profile = pd.DataFrame({
        "customer_id": ids, "email": people["email"],
        "typical_amount": rng.lognormal(np.log(40.0), 0.8, n) * spend_scale,
        "n_cards": n_cards.astype(np.int32), "card_1": card_1, "card_2": card_2,
        "device_1": device_1, "device_2": device_2, "home_idx_1": home_1.astype(np.int32),
        "home_idx_2": home_2.astype(np.int32),
        "home_change_ts": versions["change_at"].astype(np.int64),
    })
    return Dimension(rows=_customer_rows(people, versions), profile=profile)


def build_merchants(rng: np.random.Generator, n: int, period: Period) -> Dimension:
    """Merchants with a first version before the period and ~10% re-categorised mid-period."""
    idx = np.arange(n, dtype=np.int64)
    weights = np.array([c.weight for c in CATEGORIES])
    cat_1 = rng.choice(len(CATEGORIES), n, p=weights / weights.sum())
    changes = rng.random(n) < MERCHANT_CHANGE_SHARE
    cat_2 = np.where(changes, (cat_1 + rng.integers(1, len(CATEGORIES), n)) % len(CATEGORIES),
                     cat_1)
    home_weights = np.array([c.home_weight for c in COUNTRIES])
    country = rng.choice(len(COUNTRIES), n, p=home_weights / home_weights.sum())
    words = rng.choice(MERCHANT_WORDS, (n, 2))
    suffix = rng.choice(_MERCHANT_SUFFIXES, n)
    valid_1 = period.before_start(rng, n, 100, 2000)
    change_at = np.where(changes, period.mid_period(rng, n), NO_CHANGE)
    base = pd.DataFrame({
        "merchant_id": [f"M{i + 1:06d}" for i in idx],
        "name": [f"{a} {b} {s}" for (a, b), s in zip(words, suffix, strict=True)],
        "country": [COUNTRIES[c].code for c in country],
    })
    first = base.assign(category=[CATEGORIES[c].name for c in cat_1], valid_from=valid_1)
    second = base.assign(category=[CATEGORIES[c].name for c in cat_2], valid_from=change_at)
    rows = (pd.concat([first, second[changes]], ignore_index=True)
            .sort_values(["merchant_id", "valid_from"], kind="stable", ignore_index=True))
    rows["valid_from"] = pd.to_datetime(rows["valid_from"], unit="s", utc=True).astype(
        "datetime64[us, UTC]")
    rows = rows[["merchant_id", "name", "category", "country", "valid_from"]]
    profile = pd.DataFrame({
        "merchant_idx": idx.astype(np.int32), "merchant_id": base["merchant_id"],
        "category_1": [CATEGORIES[c].name for c in cat_1],
        "category_2": [CATEGORIES[c].name for c in cat_2],
        "category_change_ts": change_at.astype(np.int64),
    })
    return Dimension(rows=rows, profile=profile)


def write_customers_db(rows: pd.DataFrame, path: Path) -> None:
    """Write the customers SCD table to a fresh SQLite file (built aside, then moved in)."""
    staging = path.with_name(path.name + ".tmp")
    staging.unlink(missing_ok=True)
    with sqlite3.connect(staging) as db:
        db.execute(
            "CREATE TABLE customers (customer_id INTEGER NOT NULL, full_name TEXT, email TEXT, "
            "phone TEXT, home_country TEXT, segment TEXT, credit_limit REAL, "
            "valid_from TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "PRIMARY KEY (customer_id, valid_from))"
        )
        db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       rows.astype(object).itertuples(index=False, name=None))
    db.close()  # the context manager commits but does not close
    os.replace(staging, path)


def write_merchants_parquet(rows: pd.DataFrame, path: Path) -> None:
    """Write the merchants SCD rows as one Parquet file with microsecond UTC timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    table = pa.Table.from_pandas(rows, preserve_index=False)
    pq.write_table(table, staging, compression="snappy", coerce_timestamps="us")
    os.replace(staging, path)
