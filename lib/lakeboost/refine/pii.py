"""Personal data handling for silver: keyed hashing (HMAC-SHA256), masking and dropping columns.

Hashing is keyed so that nobody holding the silver tables can recompute a hash from a guessed
value (an unkeyed SHA-256 of an e-mail address is reversible by dictionary). The key never
enters a Spark plan, a log line or a result row.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import os
from collections.abc import Callable, Mapping

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from lakeboost.config.silver import PiiConfig
from lakeboost.errors import ConfigError, PiiKeyError
from lakeboost.spark.sql_text import quoted_name

log = logging.getLogger(__name__)

MIN_KEY_BYTES = 16
# A column that is both hashed and masked keeps its name for the hash; the masked copy gets this suffix.
MASKED_SUFFIX = "_masked"
_HOW_TO_SET = "export {env}=$(openssl rand -hex 32)"


def resolve_pii_key(pii: PiiConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: from the Databricks secret `pii.secret_scope` when set, else from env `pii.secret_env`.

    The key is the UTF-8 bytes of the secret text as stored (a hex string is not decoded), so the
    same secret gives the same hashes wherever it is read from.

    Raises:
        PiiKeyError: the key is missing, empty, shorter than 16 bytes, or the secret scope is unreachable.
        ConfigError: `pii.secret_scope` is not of the form "scope/key".
    """
    if pii.secret_scope:
        value = _secret_from_scope(pii.secret_scope, env=pii.secret_env)
        source = f"secret scope {pii.secret_scope!r}"
    else:
        value = (os.environ if environ is None else environ).get(pii.secret_env, "")
        source = f"environment variable {pii.secret_env}"
    if not value:
        raise PiiKeyError(
            f"no PII hashing key: {source} is unset or empty. Hashed columns need a secret key and there is "
            f"no fallback to an unkeyed hash (it could be reversed by guessing values). Set one, e.g. "
            f"`{_HOW_TO_SET.format(env=pii.secret_env)}`, or a Databricks secret via pii.secret_scope."
        )
    key = value.encode("utf-8")
    _check_key_length(key, source=source, env=pii.secret_env)
    log.info("PII hashing key read from %s (%d bytes)", source, len(key))
    return key


def _check_key_length(key: bytes, *, source: str, env: str) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise PiiKeyError(
            f"PII hashing key from {source} is {len(key)} bytes; at least {MIN_KEY_BYTES} are required so the "
            f"hashes cannot be brute-forced. Generate a longer one, e.g. `{_HOW_TO_SET.format(env=env)}`."
        )


def _secret_from_scope(scope_and_key: str, *, env: str) -> str:
    scope, _, key = scope_and_key.partition("/")
    if not scope or not key:
        raise ConfigError(f"pii.secret_scope must be 'scope/key', found {scope_and_key!r}")
    spark = SparkSession.getActiveSession()
    try:
        # Only Databricks runtimes ship pyspark.dbutils; import it lazily so local runs need not.
        dbutils_module = importlib.import_module("pyspark.dbutils")
    except ImportError:
        dbutils_module = None
    if dbutils_module is None or spark is None:
        raise PiiKeyError(
            f"pii.secret_scope is {scope_and_key!r} but Databricks secrets are not available here "
            f"(no pyspark.dbutils or no active SparkSession). Off Databricks, leave pii.secret_scope unset "
            f"and set the key in the environment: `{_HOW_TO_SET.format(env=env)}`."
        )
    try:
        return str(dbutils_module.DBUtils(spark).secrets.get(scope=scope, key=key) or "")
    except Exception as exc:  # dbutils raises Java-gateway/IllegalArgument errors with no common base class
        raise PiiKeyError(
            f"cannot read secret {key!r} from scope {scope!r}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Check the scope exists and the job may read it "
            f"(`databricks secrets list-secrets {scope}`)."
        ) from exc


def protect_pii(df: DataFrame, *, pii: PiiConfig, key: bytes) -> DataFrame:
    """Hash, mask and drop the columns `pii` names; every other column keeps its place.

    - `hash`: replaced in place by lowercase hex HMAC-SHA256(key, UTF-8 of the value as a string);
      null stays null. Equal values hash equal in every table, so joins on hashed keys still work.
    - `mask`: replaced in place by '*' for all but the last N characters (see `mask_keep_last`).
    - both: `<col>` is hashed and a masked copy `<col>_masked` follows it (masked from the raw value).
    - `drop`: removed.

    Raises:
        ConfigError: a named column is missing, or a column is both dropped and hashed/masked.
        PiiKeyError: `hash` names columns and the key is shorter than 16 bytes (with nothing to hash,
            the key is ignored and may be empty).
    """
    _check_columns(df.columns, pii)
    if pii.hash:  # callers without hashed columns need no key at all
        _check_key_length(key, source="the key argument", env=pii.secret_env)
    hmac_column = _hmac_sha256_udf(key)
    selected: list[Column] = []
    for name in df.columns:
        if name in pii.drop:
            continue
        column = F.col(quoted_name(name))
        if name in pii.hash:
            selected.append(hmac_column(column.cast("string")).alias(name))
            if name in pii.mask:
                selected.append(mask_keep_last(column, pii.mask[name]).alias(name + MASKED_SUFFIX))
        elif name in pii.mask:
            selected.append(mask_keep_last(column, pii.mask[name]).alias(name))
        else:
            selected.append(column)
    return df.select(*selected)


def mask_keep_last(column: Column, keep: int) -> Column:
    """'*' for every character but the last `keep`; a value no longer than `keep` is masked entirely.

    Short values are masked whole because showing "the last 4" of a 3-character value shows all of it.
    """
    if keep < 0:
        raise ConfigError(f"pii.mask counts must be >= 0 visible characters, found {keep}")
    text = column.cast("string")
    length = F.length(text)
    long_enough = length > F.lit(keep)
    hidden = F.when(long_enough, length - F.lit(keep)).otherwise(length)
    visible = F.when(long_enough, F.right(text, F.lit(keep))).otherwise(F.lit(""))
    return F.concat(F.repeat(F.lit("*"), hidden), visible)


def _hmac_sha256_udf(key: bytes) -> Callable[[Column], Column]:
    # A pandas UDF on purpose, although HMAC could be composed from built-ins (sha2 over the key
    # XOR pads): that would put the key into the plan as a literal, and plans are shown in the
    # Spark UI and written to event logs. Here the key lives only in the UDF's closure.
    @F.pandas_udf(StringType())  # type: ignore[call-overload]  # pyspark's stubs miss the hinted form
    def pii_hmac_sha256(values: pd.Series) -> pd.Series:
        digests = [
            hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest() if isinstance(value, str) else None
            for value in values
        ]
        return pd.Series(digests, index=values.index, dtype=object)

    return pii_hmac_sha256


def _check_columns(columns: list[str], pii: PiiConfig) -> None:
    present = set(columns)
    for group, names in (("pii.hash", pii.hash), ("pii.mask", tuple(pii.mask)), ("pii.drop", pii.drop)):
        missing = [n for n in names if n not in present]
        if missing:
            raise ConfigError(f"{group} names {missing}, which are not columns of the table: {columns}")
    contradictory = sorted(set(pii.drop) & (set(pii.hash) | set(pii.mask)))
    if contradictory:
        raise ConfigError(
            f"{contradictory} are both dropped (pii.drop) and hashed or masked (pii.hash/pii.mask); "
            f"remove them from one of the lists"
        )
    clashes = sorted(n + MASKED_SUFFIX for n in set(pii.hash) & set(pii.mask) if n + MASKED_SUFFIX in present)
    if clashes:
        raise ConfigError(
            f"hashing and masking a column adds '<col>{MASKED_SUFFIX}', but {clashes} already exist; "
            f"rename them or drop the column from pii.mask"
        )
