"""Simulated payments rendered as the demo's raw sources, defects included.

Each function returns rows `file` (the output file's key), order columns and `value` (one
line of text), ready for `files.write_keyed_lines`.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from card_fraud.scenario import DEFECTS, REASON_CODES, DefectRates
from card_fraud.simulate import DAY, pick, uniform, weighted

TRANSACTION_FIELDS = ("txn_id", "customer_id", "merchant_id", "amount", "currency", "event_time",
                      "card_number", "email", "device_id", "country", "channel")
CARD_EVENT_FILES = 10
CARD_EVENT_DAYS = 7


def day_text(start_date: str, day: Column) -> Column:
    """'YYYY-MM-DD' of day number `day` after `start_date` (no time zone involved)."""
    return F.date_add(F.lit(start_date).cast("date"), day.cast("int")).cast("string")


def add_defects(payments: DataFrame, *, seed: int, days: int,
                rates: DefectRates = DEFECTS) -> DataFrame:
    """Decide each transaction's defects and the file (day) it is written to.

    Malformed lines are never also late or duplicated, so every defect is counted once.
    A late transaction goes 1-3 days after its event day but never past the last day.
    """
    malformed = uniform(seed, "defect/malformed") < rates.malformed
    late_by = 1 + pick(uniform(seed, "defect/late_by"), 3)
    late = (~malformed & (uniform(seed, "defect/late") < rates.late)
            & (F.col("day") + late_by <= days - 1))
    file_day = F.when(late, F.col("day") + late_by).otherwise(F.col("day"))
    next_day = F.least(F.col("file_day") + pick(uniform(seed, "defect/dup_day"), 2),
                       F.lit(days - 1))
    return payments.withColumns({
        "malformed_kind": F.when(malformed, weighted(uniform(seed, "defect/kind"),
                                                     rates.malformed_kinds)),
        "is_late": late,
        "file_day": file_day,
        "is_duplicate": ~malformed & (uniform(seed, "defect/duplicate") < rates.duplicate),
        "chargeback_truncated": uniform(seed, "defect/chargeback") < rates.truncated_chargeback,
    }).withColumn("duplicate_day", next_day)


def _malformed_line(seed: int, fields: dict[str, Column]) -> Column:
    """The line as a broken exporter would write it, for each kind of malformation."""
    kind, style = F.col("malformed_kind"), uniform(seed, "defect/style") < 0.5
    bad_amount = F.when(style, F.lit("N/A")).otherwise(
        F.regexp_replace(fields["amount"], r"\d$", "O"))  # '12.30' -> '12.3O'
    bad_time = F.when(style, F.lit("yesterday")).otherwise(
        F.concat(F.substring(fields["event_time"], 1, 4), F.lit("-13-45T25:61:00+00:00")))
    patched = {**fields,
               "amount": F.when(kind == "bad_amount", bad_amount).otherwise(fields["amount"]),
               "event_time": F.when(kind == "bad_timestamp", bad_time)
               .otherwise(fields["event_time"])}
    line = F.concat_ws(",", *patched.values())
    missing_field = F.concat_ws(",", *[v for k, v in fields.items() if k != "device_id"])
    return (F.when((kind == "field_count") & style, missing_field)
            .when(kind == "field_count", F.concat(line, F.lit(",retry")))
            .otherwise(line))


def transaction_lines(annotated: DataFrame, *, seed: int, start_date: str,
                      days: int) -> DataFrame:
    """CSV lines (header first) per file day: every transaction plus its duplicate copy."""
    fields = {name: F.col("amount_text") if name == "amount" else F.col(name).cast("string")
              for name in TRANSACTION_FIELDS}
    valid_line = F.concat_ws(",", *fields.values())
    lines = annotated.select(
        "file_day", "ts", "id", F.lit(0).alias("copy"), "is_duplicate", "duplicate_day",
        F.when(F.col("malformed_kind").isNull(), valid_line)
        .otherwise(_malformed_line(seed, fields)).alias("value"),
    )
    duplicates = (lines.where(F.col("is_duplicate"))
                  .withColumns({"file_day": F.col("duplicate_day"), "copy": F.lit(1)}))
    headers = (annotated.sparkSession.range(days)
               .select(F.col("id").cast("int").alias("file_day"), F.lit(-1).cast("long")
                       .alias("ts"), F.lit(-1).cast("long").alias("id"), F.lit(0).alias("copy"),
                       F.lit(",".join(TRANSACTION_FIELDS)).alias("value")))
    columns = ["file_day", "ts", "id", "copy", "value"]
    return (lines.select(*columns).unionByName(duplicates.select(*columns))
            .unionByName(headers)
            .select(day_text(start_date, F.col("file_day")).alias("file"), "ts", "id", "copy",
                    "value"))


def chargeback_lines(annotated: DataFrame, *, seed: int) -> DataFrame:
    """JSON lines, one chargeback per fraud 2-30 days later, plus truncated extra copies.

    A truncated line is an *extra* line written just before the intact one (a retried
    partial write): every fraud keeps exactly one intact chargeback, so no label is lost.
    """
    delay = 2 * DAY + pick(uniform(seed, "chargeback/delay"), 28 * DAY + 1)
    reported_ms = (F.col("ts") + delay) * 1000 + pick(uniform(seed, "chargeback/ms"), 1000)
    record = F.struct(
        F.format_string("CB%010d", F.col("id")).alias("chargeback_id"),
        F.col("txn_id"),
        F.col("reported_at_ms"),
        F.element_at(F.array(*[F.lit(c) for c in REASON_CODES]),
                     pick(uniform(seed, "chargeback/reason"), len(REASON_CODES)) + 1)
        .alias("reason_code"),
        (F.col("amount_cents") / 100.0).alias("amount"),
    )
    report_day = (F.col("reported_at_ms") / (DAY * 1000)).cast("long")
    frauds = (annotated.where(F.col("is_fraud"))
              .withColumn("reported_at_ms", reported_ms.cast("long"))
              .select(day_text("1970-01-01", report_day).alias("file"), "reported_at_ms", "id",
                      F.lit(1).alias("copy"), F.to_json(record).alias("value"),
                      "chargeback_truncated"))
    keep = F.floor(F.length("value") * (0.3 + 0.5 * uniform(seed, "chargeback/cut"))).cast("int")
    truncated = (frauds.where(F.col("chargeback_truncated"))
                 .withColumns({"copy": F.lit(0), "value": F.col("value").substr(F.lit(1), keep)}))
    columns = ["file", "reported_at_ms", "id", "copy", "value"]
    return frauds.select(*columns).unionByName(truncated.select(*columns))


def card_event_lines(events: DataFrame, *, first_id: int, period_end: int) -> DataFrame:
    """JSON lines of live card events, split by time into `CARD_EVENT_FILES` files."""
    window = CARD_EVENT_DAYS * DAY / CARD_EVENT_FILES
    record = F.struct(
        F.format_string("E%010d", F.col("id") - first_id).alias("event_id"),
        "txn_id", "customer_id", "merchant_id",
        (F.col("amount_cents") / 100.0).alias("amount"),
        "currency", "event_time", "card_number", "device_id", "country", "channel",
    )
    slot = F.least(F.floor((F.col("ts") - period_end) / window), F.lit(CARD_EVENT_FILES - 1))
    return events.select(F.format_string("%04d", slot.cast("int")).alias("file"), "ts", "id",
                         F.to_json(record).alias("value"))
