"""Card payments simulated with Spark columns: one row per `id` of a `spark.range`.

Every random draw is a hash of (seed, id, purpose), never `F.rand`: a row's values do not
depend on how the range is partitioned, so the same seed gives the same data on any cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from card_fraud.scenario import (
    CHANNELS,
    COUNTRIES,
    EUR_RATES,
    FRAUD,
    HIGH_RISK_CATEGORIES,
    FraudModel,
)

DAY = 86_400
_RESOLUTION = 1 << 30  # distinct values per uniform draw


def uniform(seed: int, purpose: str) -> Column:
    """U(0, 1), open at both ends, from a hash of (seed, id, purpose)."""
    hashed = F.xxhash64(F.lit(seed).cast("long"), F.col("id"), F.lit(purpose))
    # pmod, not abs: abs(Long.MinValue) overflows (and fails under ANSI mode).
    return (F.pmod(hashed, F.lit(_RESOLUTION).cast("long")) + 0.5) / float(_RESOLUTION)


def normal(seed: int, purpose: str) -> Column:
    """N(0, 1) by Box-Muller from two hashed uniforms."""
    radius = F.sqrt(-2.0 * F.log(uniform(seed, f"{purpose}/r")))
    return radius * F.cos(2.0 * 3.141592653589793 * uniform(seed, f"{purpose}/t"))


def pick(u: Column, n: int) -> Column:
    """An integer in [0, n) from a uniform draw."""
    return F.least(F.floor(u * n), F.lit(n - 1)).cast("int")


def weighted(u: Column, options: Sequence[tuple[str, float]]) -> Column:
    """One of `options` (value, weight) chosen by a uniform draw."""
    total = sum(weight for _, weight in options)
    bounds = list(accumulate(weight / total for _, weight in options))
    chosen = F.when(u < bounds[0], F.lit(options[0][0]))
    for (value, _), bound in zip(options[1:-1], bounds[1:-1], strict=True):
        chosen = chosen.when(u < bound, F.lit(value))
    return chosen.otherwise(F.lit(options[-1][0]))


def _country(attribute: str, idx: Column) -> Column:
    values = [getattr(c, attribute) for c in COUNTRIES]
    return F.element_at(F.array(*[F.lit(v) for v in values]), idx + 1)


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@dataclass(frozen=True)
class Traffic:
    """Where and when payments happen, and how behaviour is shifted (live-event drift)."""

    seed: int
    start: int  # epoch seconds of the first day's midnight, UTC
    first_day: int  # day index of the first simulated day, from `start`
    n_days: int
    customers: int
    merchants: int
    amount_factor: float = 1.0
    foreign_share: float = FRAUD.foreign_share
    model: FraudModel = FRAUD


def _draw_keys(frame: DataFrame, traffic: Traffic) -> DataFrame:
    """Who pays whom, on which day, at what local hour (shaped like a day of shopping)."""
    seed = traffic.seed
    night = uniform(seed, "night") < traffic.model.night_share
    daytime = 6 * 3600 + 18 * 3600 * (uniform(seed, "tod/a") + uniform(seed, "tod/b")) / 2
    return frame.select(
        "id",
        (F.lit(traffic.first_day) + pick(uniform(seed, "day"), traffic.n_days)).alias("day"),
        (pick(uniform(seed, "customer"), traffic.customers) + 1).cast("long").alias("customer_id"),
        pick(uniform(seed, "merchant"), traffic.merchants).alias("merchant_idx"),
        F.when(night, uniform(seed, "tod/night") * 6 * 3600).otherwise(daytime)
        .cast("long").alias("shape_sod"),
    )


def _place(frame: DataFrame, traffic: Traffic) -> DataFrame:
    """UTC time, the versions of customer and merchant valid then, country and currency.

    The day's shape is drawn in the customer's first home time zone and wrapped into the same
    UTC day, so the UTC event date is always `day` and the time never depends on the customer
    version it then selects (which would be circular).
    """
    seed = traffic.seed
    home_offset = _country("utc_offset_minutes", F.col("home_idx_1")) * 60
    ts = F.lit(traffic.start) + F.col("day") * DAY + F.pmod(F.col("shape_sod") - home_offset, DAY)
    home = F.when(F.col("ts") >= F.col("home_change_ts"), F.col("home_idx_2")).otherwise(
        F.col("home_idx_1"))
    abroad = pick(uniform(seed, "abroad"), len(COUNTRIES) - 1)
    abroad = abroad + (abroad >= F.col("home_idx")).cast("int")  # skip the home country
    is_foreign = uniform(seed, "foreign") < traffic.foreign_share
    category = F.when(F.col("ts") >= F.col("category_change_ts"), F.col("category_2")).otherwise(
        F.col("category_1"))
    return (
        frame.withColumn("ts", ts.cast("long"))
        .withColumn("home_idx", home)
        .withColumn("country_idx", F.when(is_foreign, abroad).otherwise(F.col("home_idx")))
        .withColumns({
            "is_foreign": is_foreign,
            "category": category,
            "country": _country("code", F.col("country_idx")),
            "currency": _country("currency", F.col("country_idx")),
            "offset_minutes": _country("utc_offset_minutes", F.col("country_idx")),
        })
    )


def _behave(frame: DataFrame, traffic: Traffic) -> DataFrame:
    """Channel, amount, card and device: what the cardholder (or a fraudster) does."""
    seed, model = traffic.seed, traffic.model
    spike = F.when(
        uniform(seed, "spike") < model.spike_share,
        model.spike_low + (model.spike_high - model.spike_low) * uniform(seed, "spike/size"),
    ).otherwise(1.0)
    # log(amount / typical amount), in euros; the live-event drift scales it by amount_factor.
    log_ratio = model.amount_sd * normal(seed, "amount") + F.log(spike) + F.log(
        F.lit(traffic.amount_factor))
    rates = F.create_map(*[x for cur, r in EUR_RATES.items() for x in (F.lit(cur), F.lit(r))])
    cents = F.col("typical_amount") * F.exp(F.col("log_ratio")) * rates[F.col("currency")] * 100
    second_card = (F.col("n_cards") == 2) & (uniform(seed, "card") < 0.4)
    new_device = F.format_string(
        "dev-%010x", F.pmod(F.xxhash64(F.lit(seed).cast("long"), F.col("id"), F.lit("device/new")),
                            F.lit(16**10).cast("long")))
    device = (F.when(uniform(seed, "device") < model.new_device_share, new_device)
              .when(uniform(seed, "device/which") < 0.3, F.col("device_2"))
              .otherwise(F.col("device_1")))
    return (
        frame.withColumn("log_ratio", log_ratio)
        .withColumns({
            "channel": weighted(uniform(seed, "channel"), CHANNELS),
            "amount_cents": F.greatest(F.round(cents), F.lit(50.0)).cast("long"),
            "card_number": F.when(second_card, F.col("card_2")).otherwise(F.col("card_1")),
            "device_id": device,
            "local_ts": F.col("ts") + F.col("offset_minutes") * 60,
        })
    )


def _label(frame: DataFrame, traffic: Traffic) -> DataFrame:
    """Decide fraud with the logistic model of `FraudModel` on columns the data exposes."""
    seed, model = traffic.seed, traffic.model
    night = F.pmod(F.col("local_ts"), DAY) < 6 * 3600
    logit = (
        F.lit(model.intercept)
        + model.amount_ratio * F.greatest(F.col("log_ratio"), F.lit(0.0))
        + model.foreign * F.col("is_foreign").cast("double")
        + model.high_risk * F.col("category").isin(*HIGH_RISK_CATEGORIES).cast("double")
        + model.night * night.cast("double")
        + model.online * (F.col("channel") == "online").cast("double")
        + model.noise_sd * normal(seed, "fraud/noise")
    )
    return frame.withColumn("is_fraud", uniform(seed, "fraud") < 1.0 / (1.0 + F.exp(-logit)))


def _render(frame: DataFrame) -> DataFrame:
    """The output contract: typed keys for ordering, rendered strings for the files."""
    offsets = {c.utc_offset_minutes for c in COUNTRIES}
    offset_text = F.create_map(*[x for m in sorted(offsets)
                                 for x in (F.lit(m), F.lit(_offset_text(m)))])
    cents = F.col("amount_cents")
    local = F.date_format(F.timestamp_seconds(F.col("local_ts")), "yyyy-MM-dd'T'HH:mm:ss")
    return frame.select(
        F.col("id"),
        F.col("day"),
        F.col("ts"),
        F.format_string("T%010d", F.col("id")).alias("txn_id"),
        F.col("customer_id"),
        F.col("merchant_id"),
        cents,
        F.concat((cents / 100).cast("long").cast("string"), F.lit("."),
                 F.lpad((cents % 100).cast("string"), 2, "0")).alias("amount_text"),
        F.col("currency"),
        F.concat(local, offset_text[F.col("offset_minutes")]).alias("event_time"),
        F.col("card_number"),
        F.col("email"),
        F.col("device_id"),
        F.col("country"),
        F.col("channel"),
        F.col("is_fraud"),
    )


def simulate_payments(ids: DataFrame, traffic: Traffic, customers: DataFrame,
                      merchants: DataFrame) -> DataFrame:
    """Payments for every `id` in `ids`, labelled; customers/merchants are the profiles.

    Date formatting uses the session time zone: run this with `spark.sql.session.timeZone`
    set to UTC (the generator does).
    """
    return (
        _draw_keys(ids, traffic)
        .join(F.broadcast(customers), on="customer_id", how="inner")
        .join(F.broadcast(merchants), on="merchant_idx", how="inner")
        .transform(_place, traffic=traffic)
        .transform(_behave, traffic=traffic)
        .transform(_label, traffic=traffic)
        .transform(_render)
    )
