"""Integration of sources that disagree: currency, keys and time (as-of dimension attributes)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.silver import FxConfig
from lakeboost.io.catalog import TableCatalog, WriteResult
from lakeboost.refine.asof import asof_join
from lakeboost.refine.conform import with_content_hash


def with_reporting_amount(df: DataFrame, *, fx: FxConfig, amount: str = "amount",
                          currency: str = "currency") -> DataFrame:
    """Add `amount_<reporting currency>`; an unknown currency gives NULL (flagged by contracts)."""
    rates = F.create_map(*[item for code, rate in sorted(fx.rates.items()) for item in (F.lit(code), F.lit(rate))])
    column = f"amount_{fx.reporting_currency.lower()}"
    return df.withColumn(column, F.round(F.col(amount) * rates[F.col(currency)], 2))


def enrich_transactions(transactions: DataFrame, customers: DataFrame, merchants: DataFrame, *,
                        fx: FxConfig) -> DataFrame:
    """Each transaction with the customer and merchant attributes valid at its event time.

    Returns one row per transaction (never more: as-of joins pick one version per key).
    """
    with_customer = asof_join(
        transactions, customers, on=["customer_id"], left_time="event_time", right_time="valid_from",
        right_columns=["home_country", "segment", "credit_limit"], prefix="customer_",
    )
    with_merchant = asof_join(
        with_customer, merchants, on=["merchant_id"], left_time="event_time", right_time="valid_from",
        right_columns=["category", "country"], prefix="merchant_",
    )
    reporting = f"amount_{fx.reporting_currency.lower()}"
    return (
        with_merchant.transform(with_reporting_amount, fx=fx)
        .select(
            "txn_id", "customer_id", "merchant_id", "event_time",
            F.to_date("event_time").alias("event_date"),
            "amount", "currency", F.col(reporting), "card_number", "card_number_masked", "email",
            "device_id", "country", "channel",
            F.col("customer_home_country").alias("home_country"),
            F.col("customer_segment").alias("segment"),
            F.col("customer_credit_limit").alias("credit_limit"),
            F.col("merchant_category").alias("merchant_category"),
            F.col("merchant_country").alias("merchant_country"),
        )
    )


ENRICHED = "silver.transactions_enriched"


def integrate_step(catalog: TableCatalog, *, fx: FxConfig) -> WriteResult:
    """Rebuild the integrated transactions from silver; MERGE writes only rows that changed."""
    enriched = enrich_transactions(
        catalog.read("silver.transactions"), catalog.read("silver.customers"),
        catalog.read("silver.merchants"), fx=fx,
    )
    return catalog.upsert(enriched.transform(with_content_hash, columns=enriched.columns), ENRICHED,
                          keys=("txn_id",), order_by=())
