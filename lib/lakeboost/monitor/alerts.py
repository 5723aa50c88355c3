"""Alerts: one row per breach in the alerts table, delivered to every hook at least once.

An alert is keyed by (kind, table, window, subject, model version) (`ALERT_KEYS`): re-running
the monitor over the same data finds the alert already recorded and does not record it again,
and after a promotion the new champion's breach of a window already alerted for the old one is
an alert of its own (a different model, judged anew). Its `alert_id` is
a digest of those key values, so it is the same whichever run raised it: every payload carries
it (and webhooks get it as the `Idempotency-Key` header too), for a receiver to drop the
copies at-least-once delivery may bring.

The alerts table, besides the alert (kind, table, window_start, subject, value, threshold,
message, model_version) and the run that raised it (monitor_run_id, raised_at):
- `delivery`: `pending` until every configured hook accepted the alert, then `delivered`
  (`delivered_at` says when). `delivered_to` lists the hooks that accepted it (`log`, or
  `webhook:`/`command:` and a digest of the URL or argv, which may hold a token), `attempts`
  counts the monitor runs that tried to send it, `last_error` is the latest failure.
- `retrain`: `pending` when the alert should trigger a retrain (drift or decay, with
  `monitor.retrain_on_alert`), `requested` once a monitor run asked the runner for it
  (`retrain_requested_at`); NULL for an alert that asks for none.

Retry: every monitor run first sends the alerts still pending, to the hooks that have not
accepted them, then records and sends its new ones, and asks for the retrains still pending.
A hook that answers an error (HTTP >= 400, a non-zero exit) is tried again on the next run; one
that times out or is unreachable (`timeout_seconds`, 10 s by default) is not called again in the
same pass (a run makes two: earlier alerts, then its new ones), so a dead endpoint costs a run
a timeout or two, not one per alert. A failure is logged
and reported in the run summary; it never loses the alert row (which is the record).

Concurrent monitor runs over one alerts table: the insert of new alerts and the delivery-state
update are both stated against the rows they change (insert when absent; hooks united, attempts
added), so on a Delta commit conflict they are re-run, up to 3 times, then refused with
ConcurrentWriteError. Both runs may send an alert: receivers dedupe on `alert_id`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TypeVar

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakeboost.config.monitoring import AlertHook
from lakeboost.errors import ConcurrentWriteError
from lakeboost.io.catalog import TableCatalog
from lakeboost.io.conflicts import conflict_name
from lakeboost.spark.sql_text import string_literal

log = logging.getLogger(__name__)
ALERT_KEYS = ("kind", "table", "window_start", "subject", "model_version")
ALERT_SCHEMA = ("kind string, table string, window_start timestamp, subject string, value double, "
                "threshold double, message string, model_version bigint")
STATE_SCHEMA = ("alert_id string, monitor_run_id string, delivery string, delivered_to array<string>, attempts int, "
                "last_error string, retrain string")
PENDING, DELIVERED, REQUESTED = "pending", "delivered", "requested"
UNREACHABLE = (TimeoutError, subprocess.TimeoutExpired, urllib.error.URLError)  # HTTPError is an answer
RETRIES = 3
T = TypeVar("T")


@dataclass(frozen=True)
class Alert:
    kind: str  # data_drift | prediction_drift | performance_decay | data_quality
    table: str
    window_start: object  # datetime, or None for run-level alerts (data quality)
    subject: str
    value: float
    threshold: float
    message: str
    model_version: int | None = None

    @property
    def alert_id(self) -> str:
        """A digest of the alert's key values: the same for the same alert in every run."""
        values = [v.isoformat() if isinstance(v, dt.datetime) else v for v in (getattr(self, k) for k in ALERT_KEYS)]
        return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:32]

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "alert_id": self.alert_id}, default=str, sort_keys=True)


@dataclass(frozen=True)
class Delivery:
    """One delivery pass: alerts tried, delivered to every hook, still pending; the failures."""

    tried: int = 0
    delivered: int = 0
    pending: int = 0
    failures: tuple[str, ...] = ()


def hook_id(hook: AlertHook) -> str:
    """How `delivered_to` names a hook: its kind and a digest of its target (never the URL itself)."""
    if hook.kind == "log":
        return "log"
    target = hook.url if hook.kind == "webhook" else json.dumps(list(hook.command))
    return f"{hook.kind}:{hashlib.sha256(str(target).encode()).hexdigest()[:12]}"


def record_alerts(catalog: TableCatalog, alerts: Sequence[Alert], table: str, *, run_id: str,
                  retrain_kinds: Collection[str] = ()) -> list[Alert]:
    """Insert alerts not recorded before, pending delivery (and a retrain, for `retrain_kinds`);
    return those (the ones to send)."""
    if catalog.exists(table):
        seen = {tuple(r) for r in catalog.read(table).select(*ALERT_KEYS).collect()}  # alerts are few
        alerts = [a for a in alerts if tuple(getattr(a, k) for k in ALERT_KEYS) not in seen]
    if not alerts:
        return []
    rows = catalog.spark.createDataFrame(
        [(*asdict(a).values(), a.alert_id, run_id, PENDING, [], 0, None, PENDING if a.kind in retrain_kinds else None)
         for a in alerts], f"{ALERT_SCHEMA}, {STATE_SCHEMA}")
    rows = rows.select(
        *[F.col(c.split()[0]) for c in ALERT_SCHEMA.split(", ")], "alert_id", "monitor_run_id",
        F.current_timestamp().alias("raised_at"), "delivery", "delivered_to", "attempts", "last_error",
        F.lit(None).cast("timestamp").alias("delivered_at"), "retrain",
        F.lit(None).cast("timestamp").alias("retrain_requested_at"))
    if catalog.exists(table):  # insert when absent: a concurrent run may have recorded the same alert
        same = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in ALERT_KEYS)
        _retried(lambda: catalog.insert_new_rows(rows, table, same), table)
    else:
        catalog.write(rows, table)
    return list(alerts)


def pending_alerts(catalog: TableCatalog, table: str) -> list[tuple[str, Alert, list[str]]]:
    """(alert id, alert, hooks that accepted it) of every alert not yet delivered, oldest first."""
    alerts = catalog.read(table) if catalog.exists(table) else None
    if alerts is None or "delivery" not in alerts.columns:  # a table from before delivery states
        return []
    rows = (alerts.filter(F.col("delivery") == PENDING).orderBy("raised_at", "alert_id")
            .select("alert_id", *[f.name for f in fields(Alert)], "delivered_to").collect())  # alerts are few
    return [(r["alert_id"], Alert(*[r[f.name] for f in fields(Alert)]), list(r["delivered_to"] or [])) for r in rows]


def deliver_alerts(catalog: TableCatalog, table: str, hooks: Sequence[AlertHook], *,
                   only: Collection[str] | None = None) -> Delivery:
    """Send every pending alert (or those of `only`, by alert id) to the hooks that have not
    accepted it yet, and record the outcome in the alerts table."""
    pending = [p for p in pending_alerts(catalog, table) if only is None or p[0] in only]
    if not pending:
        return Delivery()
    required = sorted({hook_id(h) for h in hooks})
    unreachable: set[str] = set()
    outcome, failures = [], []
    for alert_id, alert, accepted in pending:
        tried, error = False, None
        for hook in hooks:
            name = hook_id(hook)
            if name in accepted or name in unreachable:
                continue
            tried = True
            try:
                _call(hook, alert)
                accepted = [*accepted, name]
            except Exception as exc:  # a broken hook must not stop the others or the run
                error = f"{hook.kind} hook failed for {alert.kind} {alert.subject}: {_first_line(exc)}"
                log.error(error)
                failures.append(error)
                if isinstance(exc, UNREACHABLE) and not isinstance(exc, urllib.error.HTTPError):
                    unreachable.add(name)
        outcome.append((alert_id, accepted, int(tried), error))
    _record_delivery(catalog, table, outcome, required)
    delivered = sum(1 for _, accepted, _, _ in outcome if set(required) <= set(accepted))
    return Delivery(tried=sum(t for _, _, t, _ in outcome), delivered=delivered, pending=len(outcome) - delivered,
                    failures=tuple(failures))


def _record_delivery(catalog: TableCatalog, table: str, outcome: list[tuple[str, list[str], int, str | None]],
                     required: list[str]) -> None:
    """One MERGE stated against the row it changes (hooks united, attempts added): it commutes
    with a concurrent run's, so a conflict is simply re-run."""
    source = catalog.spark.createDataFrame(outcome, "alert_id string, accepted array<string>, tried int, error string")
    hooks = F.array_union(F.coalesce(F.col("t.delivered_to"), F.array().cast("array<string>")), F.col("s.accepted"))
    done = F.size(F.array_except(F.array(*[F.lit(h) for h in required]).cast("array<string>"), hooks)) == 0
    update: dict[str, str | Column] = {
        "delivered_to": hooks, "attempts": F.col("t.attempts") + F.col("s.tried"),
        "last_error": F.coalesce(F.col("s.error"), F.col("t.last_error")),
        "delivery": F.when(done, F.lit(DELIVERED)).otherwise(F.lit(PENDING)),
        "delivered_at": F.when(done, F.coalesce(F.col("t.delivered_at"), F.current_timestamp()))}
    if catalog.connect:  # Delta's SQL: its Python DeltaTable needs a JVM in this process
        _retried(lambda: catalog.merge_sql(table, source, lambda target, view: _delivery_merge_sql(
            target, view, required)), table)
        return
    _retried(lambda: (catalog.delta_table(table).alias("t").merge(source.alias("s"), "t.alert_id = s.alert_id")
                      .whenMatchedUpdate(set=update).execute()), table)


def _delivery_merge_sql(target: str, source: str, required: list[str]) -> str:
    """`_record_delivery`'s MERGE as SQL (the same clauses)."""
    hooks = "array_union(coalesce(t.delivered_to, cast(array() AS array<string>)), s.accepted)"
    wanted = f"cast(array({', '.join(string_literal(h) for h in required)}) AS array<string>)"
    done = f"size(array_except({wanted}, {hooks})) = 0"
    return (f"MERGE INTO {target} t USING {source} s ON t.alert_id = s.alert_id WHEN MATCHED THEN UPDATE SET "
            f"delivered_to = {hooks}, attempts = t.attempts + s.tried, "
            "last_error = coalesce(s.error, t.last_error), "
            f"delivery = CASE WHEN {done} THEN {string_literal(DELIVERED)} ELSE {string_literal(PENDING)} END, "
            f"delivered_at = CASE WHEN {done} THEN coalesce(t.delivered_at, current_timestamp()) END")


def request_retrains(catalog: TableCatalog, table: str) -> list[Alert]:
    """The alerts whose retrain is still pending, marked requested (the caller asks for it)."""
    alerts = catalog.read(table) if catalog.exists(table) else None
    if alerts is None or "retrain" not in alerts.columns:
        return []
    rows = alerts.filter(F.col("retrain") == PENDING).select("alert_id", *[f.name for f in fields(Alert)]).collect()
    if rows:
        mine = (F.col("retrain") == PENDING) & F.col("alert_id").isin([r["alert_id"] for r in rows])
        if catalog.connect:  # Delta's SQL: its Python DeltaTable needs a JVM in this process
            ids = ", ".join(string_literal(r["alert_id"]) for r in rows)
            _retried(lambda: catalog.spark.sql(
                f"UPDATE {catalog.sql_ref(table)} SET retrain = {string_literal(REQUESTED)}, "
                f"retrain_requested_at = current_timestamp() "
                f"WHERE retrain = {string_literal(PENDING)} AND alert_id IN ({ids})"), table)
        else:
            _retried(lambda: catalog.delta_table(table).update(
                mine, {"retrain": F.lit(REQUESTED), "retrain_requested_at": F.current_timestamp()}), table)
    return [Alert(*[r[f.name] for f in fields(Alert)]) for r in rows]


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


def _retried(write: Callable[[], T], table: str) -> T:
    for attempt in range(1, RETRIES + 1):
        try:
            return write()
        except Exception as exc:
            # io.conflicts tells a Delta conflict on either session kind (a Delta class on a classic
            # session, an error class over Spark Connect).
            if conflict_name(exc) is None:
                raise
            if attempt == RETRIES:
                raise ConcurrentWriteError(
                    f"{table}: another monitor run kept changing the alerts table ({RETRIES} commit conflicts, the "
                    f"last: {_first_line(exc)}); run one monitor at a time over one alerts table") from exc
            log.warning("%s: commit conflict with a concurrent monitor run; re-running the write", table)
    raise AssertionError("unreachable")


def _call(hook: AlertHook, alert: Alert) -> None:
    if hook.kind == "log":
        log.warning("ALERT %s on %s window %s: %s", alert.kind, alert.table, alert.window_start, alert.message)
    elif hook.kind == "webhook":
        assert hook.url is not None  # validated in config
        request = urllib.request.Request(hook.url, data=alert.to_json().encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Idempotency-Key": alert.alert_id})
        # The timeout bounds the connect and every read: a server that never answers fails here.
        with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise RuntimeError(f"HTTP {response.status} from the webhook")
    else:
        subprocess.run(list(hook.command), input=alert.to_json(), text=True, check=True,
                       timeout=hook.timeout_seconds, capture_output=True)
