"""Every byte the demo run leaves, scanned: no secret anywhere, no clear PII outside bronze.

Secrets are canaries the run was given (tests/conftest.py): the PII key, the database password
and a credential in the JDBC URL. Clear PII is every distinct value of the demo's personal
columns as the sources deliver them (customers' email, phone and name from the database, card
numbers and e-mails from the transaction files). Scanned: every Delta table outside bronze
(read through Delta, so compressed Parquet pages cannot hide a value), and every other file of
the run byte by byte: Delta logs and checkpoints, streaming checkpoints, the MLflow database and
artifacts (the config, the model, the plots, the monitoring report), the pipeline's log, and
this session's Spark event log. Bronze keeps raw rows by design (see README, "Personal data").
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import DEMO_JDBC_PASSWORD, DEMO_PII_KEY, DEMO_URL_SECRET

pytestmark = pytest.mark.e2e
SECRETS = (DEMO_PII_KEY, DEMO_JDBC_PASSWORD, DEMO_URL_SECRET)
_WORD = re.compile(r"[a-z0-9]+")


def _clear_pii(spark: SparkSession, landing: Path) -> set[str]:
    with sqlite3.connect(landing / "customers.db") as db:
        values = {str(v) for row in db.execute("SELECT email, phone, full_name FROM customers") for v in row if v}
    files = spark.read.option("header", "true").csv(f"{landing}/transactions").select("card_number", "email")
    values |= {v for row in files.distinct().collect() for v in row if v}
    values |= {re.sub(r"[^0-9]", "", v) for v in values if re.fullmatch(r"[0-9 -]{12,}", v)}  # normalised cards
    return {v.lower() for v in values if len(v) > 6}


def _is_table_data(path: Path) -> bool:
    return path.suffix == ".parquet" and "_delta_log" not in path.parts and "mlartifacts" not in path.parts


def _files(roots: list[Path], skip: list[Path]) -> list[Path]:
    return [p for root in roots for p in root.rglob("*")
            if p.is_file() and not any(p.is_relative_to(s) for s in skip) and not _is_table_data(p)]


def _hits(path: Path, pii: set[str]) -> list[str]:
    data = path.read_bytes().lower()
    found = [s for s in SECRETS if s.lower().encode() in data]
    words = {w.encode() for w in _WORD.findall(data.decode("latin-1"))}
    for value in pii:  # a value's longest word must be a word of the file before the substring search
        longest = max(_WORD.findall(value), key=len, default="")
        if longest.encode() in words and value.encode() in data:
            found.append(value)
    return found


def test_no_secret_and_no_clear_pii_in_anything_the_run_wrote(spark: SparkSession, demo) -> None:
    config, _ = demo
    built = Path(config.storage.landing).parent  # the shared build: lake, landing, pipeline.log
    lake = built / "lake"
    pii = _clear_pii(spark, built / "landing")
    assert len(pii) > 300, "the PII oracle should hold the demo's personal values"
    event_log = Path(spark.conf.get("spark.eventLog.dir").removeprefix("file://").removeprefix("file:"))

    # The detector finds what it looks for: raw values in a landed file, the canaries in text.
    landed = next((built / "landing/transactions").glob("*.csv"))
    assert _hits(landed, pii), "the scan must see the clear values of a landed file"
    files = _files([built, event_log], skip=[built / "landing", lake / "bronze"])
    leaks = {str(p): hits for p in files if (hits := _hits(p, pii))}

    assert leaks == {}
    scanned = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    assert scanned["files"] > 200 and (built / "pipeline.log").stat().st_size > 0, scanned
    # Delta tables outside bronze, decompressed: every string column of every row.
    # Each value with its longest word: rows are joined to the values sharing a word (a hash
    # join), then searched for the whole value.
    values = spark.createDataFrame([(v, max(_WORD.findall(v), key=len)) for v in (*pii, *(s.lower() for s in SECRETS))],
                                   "value string, word string")
    catalog = TableCatalog(spark, config.storage.model_copy(update={"root": str(lake)}))
    tables = sorted(f"{log.parent.parent.name}.{log.parent.name}" for log in lake.glob("*/*/_delta_log")
                    if log.parent.parent.name != "bronze")
    assert len(tables) >= 12, tables

    def found(table: str) -> list:
        df = catalog.read(table)
        rows = df.select(F.lower(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))).alias("row"))
        words = rows.select("row", F.explode(F.split("row", "[^a-z0-9]+")).alias("word"))
        return (words.join(F.broadcast(values), "word", "inner")
                .filter(F.expr("instr(row, value) > 0")).limit(3).collect())

    assert found("bronze.customers"), "the table check must see bronze's raw personal data"
    leaked = {table: rows for table in tables if (rows := found(table))}
    assert leaked == {}
