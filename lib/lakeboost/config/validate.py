"""Cross-section checks, run when the config loads (before Spark starts).

Every table, contract, integration, feature set and metric a section names must exist
and fit the rest: a training set over a feature table nobody builds, a stream contract that
is not a silver table or a regression model promoted on PR AUC is a config error naming the
key, not a failure an hour into a run. Pipeline steps and what they require are the runner's
to check (`lakeboost.steps.check_steps`), also before Spark starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from lakeboost.config.dataset import DatasetConfig, PresenceLabel
from lakeboost.config.features import FeatureSetConfig
from lakeboost.config.metrics import METRICS, metric_for, metric_problem
from lakeboost.config.model import LakeboostConfig

Problem = tuple[tuple[str, ...], str]


def _at(dotted: str) -> tuple[str, ...]:
    """A config key path from its dotted form (`dataset.label.table`)."""
    return tuple(dotted.split("."))


def application_tables(config: LakeboostConfig) -> dict[str, str]:
    """Logical table -> the config key whose step writes it, for the application's own tables."""
    tables = {f"bronze.{name}": f"sources.{name}" for name in config.sources}
    tables |= {f"silver.{name}": f"silver.tables.{name}" for name in config.silver.tables}
    tables |= {integration.table or f"silver.{name}": f"silver.integrations.{name}"
               for name, integration in config.silver.integrations.items()}
    tables |= {f"gold.{name}": f"gold.features.{name}" for name in config.gold.features}
    return tables


def known_tables(config: LakeboostConfig) -> set[str]:
    """Logical tables some step of this config writes."""
    tables = set(application_tables(config)) | set(config.storage.tables.by_key().values())
    tables.add(config.scoring.predictions_table)
    stream = config.scoring.stream
    if stream is not None:
        tables |= {stream.events_table, stream.predictions_table}
        if stream.quarantine_table is not None:  # None only before LakeboostConfig resolves it
            tables.add(stream.quarantine_table)
    return tables


def cross_section_problems(config: LakeboostConfig, *, feature_problem=None) -> list[Problem]:
    """(key path, what is wrong) for every inconsistency between sections."""
    return list(_problems(config, known_tables(config), feature_problem))


def _unknown(table: str, tables: set[str]) -> str:
    return f"names table {table!r}, which no configured source, silver table, integration or feature set " \
           f"writes; known tables: {sorted(tables)}"


def _problems(config: LakeboostConfig, tables: set[str], feature_problem) -> Iterator[Problem]:
    yield from _framework_table_problems(config)
    yield from _maturity_problems(config)
    for name, silver in config.silver.tables.items():
        if silver.source not in tables:
            yield _at(f"silver.tables.{name}.source"), _unknown(silver.source, tables)
    for name, integration in config.silver.integrations.items():
        for i, read in enumerate(integration.inputs()):
            if read not in tables:
                where = "base" if i == 0 else "as_of/lookups"
                yield _at(f"silver.integrations.{name}.{where}"), _unknown(read, tables)
        base = config.silver.tables.get(integration.base.split(".", 1)[-1])
        if base is not None and integration.base.startswith("silver."):
            missing = [c for c in integration.key if c not in base.columns]
            if missing:
                yield _at(f"silver.integrations.{name}.key"), \
                    f"key columns {missing} are not columns of {integration.base} ({sorted(base.columns)})"
    yield from _dataset_problems(config, tables)
    yield from _gold_problems(config, tables, feature_problem)
    stream = config.scoring.stream
    if stream is not None:
        if stream.source not in tables:
            yield _at("scoring.stream.source"), _unknown(stream.source, tables)
        if stream.contract not in config.silver.tables:
            yield _at("scoring.stream.contract"), \
                f"no silver table {stream.contract!r}; configured: {sorted(config.silver.tables)}"
        if stream.integration is not None and stream.integration not in config.silver.integrations:
            yield _at("scoring.stream.integration"), \
                f"no integration {stream.integration!r}; configured: {sorted(config.silver.integrations)}"
    predictions = {config.scoring.predictions_table} | ({stream.predictions_table} if stream else set())
    for table in config.monitor.predictions or ():
        if table not in predictions:
            yield _at("monitor.predictions"), f"{table!r} is not a predictions table this config writes: " \
                                              f"{sorted(predictions)}"
    yield from _metric_problems(config)


def _framework_table_problems(config: LakeboostConfig) -> Iterator[Problem]:
    """A framework table (storage.tables) may not be a table the application writes: ingest's
    quarantine rows would land in a source's bronze table, say."""
    owned = application_tables(config)
    for key, table in config.storage.tables.by_key().items():
        if table in owned:
            yield _at(f"storage.tables.{key}"), \
                f"{table!r} is also the table of {owned[table]}: rename one of them (storage.tables.{key} " \
                f"defaults to {type(config.storage.tables).model_fields[key].default!r})"


def _maturity_problems(config: LakeboostConfig) -> Iterator[Problem]:
    """monitor.label_maturity is at least gold.training_set.label_maturity.

    The training set's maturity is the config's statement of how long labels take to arrive:
    younger examples are left out because their labels may be missing. A monitoring window
    judged sooner would count those missing labels as negatives (or leave values out), and
    report a decay the model does not have. A longer wait is fine (a cautious monitor), so the
    rule is >=, and the monitor defaults to the training set's value (LakeboostConfig)."""
    ts, monitored = config.gold.training_set, config.monitor.label_maturity
    if ts is not None and ts.label_maturity is not None and monitored is not None and monitored < ts.label_maturity:
        yield _at("monitor.label_maturity"), \
            f"{monitored} is shorter than gold.training_set.label_maturity ({ts.label_maturity}): a window " \
            "would be judged before its labels had time to arrive; set monitor.label_maturity to at least " \
            f"{ts.label_maturity} (or leave it unset: it defaults to the training set's)"


def _dataset_problems(config: LakeboostConfig, tables: set[str]) -> Iterator[Problem]:
    dataset = config.dataset
    if dataset is None:
        if config.gold.features or config.gold.training_set is not None:
            yield _at("dataset"), "gold features and training sets need `dataset` (dataset.events, .key, " \
                                ".event_time, .date_column, .label)"
        return
    if dataset.events not in tables:
        yield _at("dataset.events"), _unknown(dataset.events, tables)
    label = dataset.label
    if isinstance(label, PresenceLabel):
        if label.table not in tables:
            yield _at("dataset.label.table"), _unknown(label.table, tables)
        if label.key is not None and len(label.key) != len(dataset.key):
            yield _at("dataset.label.key"), f"{len(label.key)} column(s) {list(label.key)} for a key of " \
                                               f"{len(dataset.key)} column(s) {list(dataset.key)}"
        ts = config.gold.training_set
        if ts is not None and ts.label_maturity is None:
            yield _at("gold.training_set.label_maturity"), \
                "a presence label needs label_maturity: an event without a label row is a negative only once " \
                "its label had time to arrive (e.g. 30d)"
    if label.column in dataset.key or label.column == dataset.event_time:
        yield _at("dataset.label.column"), f"{label.column!r} is already the key or the event time"
    split = config.training.split
    if split.kind == "group" and split.group_column is None:
        yield _at("training.split.group_column"), "a group split needs group_column"


def _gold_problems(config: LakeboostConfig, tables: set[str], feature_problem) -> Iterator[Problem]:
    dataset = config.dataset
    for name, features in config.gold.features.items():
        for rate_name, rate in features.label_rates.items():
            if rate.labels is None:
                if dataset is not None and not isinstance(dataset.label, PresenceLabel):
                    yield _at(f"gold.features.{name}.label_rates.{rate_name}.labels"), \
                        "no `labels` table and the dataset's label is not a presence label"
            elif rate.labels not in tables:
                yield _at(f"gold.features.{name}.label_rates.{rate_name}.labels"), _unknown(rate.labels, tables)
            elif rate.available_at is None:
                yield _at(f"gold.features.{name}.label_rates.{rate_name}.available_at"), \
                    f"a label rate over its own `labels` table needs `label_rates.{rate_name}.available_at`"
        if dataset is not None:
            yield from _outcome_problems(name, features, dataset)
            yield from _lag_problems(name, features, dataset, _event_columns(config, dataset))
        for custom in features.custom:
            problem = feature_problem(custom.name) if feature_problem else None
            if problem:
                yield _at(f"gold.features.{name}.custom"), problem
    ts = config.gold.training_set
    if ts is not None:
        if ts.features not in {f"gold.{name}" for name in config.gold.features}:
            yield _at("gold.training_set.features"), \
                f"{ts.features!r} is not a configured feature set: {sorted(f'gold.{n}' for n in config.gold.features)}"
        for join in ts.as_of:
            if join.table not in tables:
                yield _at("gold.training_set.as_of"), _unknown(join.table, tables)
        if config.training.split.group_column and dataset is not None \
                and config.training.split.group_column == dataset.label.column:
            yield _at("training.split.group_column"), "the label cannot be the group column"
        feature_set = config.gold.features.get(ts.features.split(".", 1)[-1])
        if dataset is not None and feature_set is not None:
            for column in [k for k in dataset.key if k in feature_set.passthrough and k not in ts.categorical]:
                yield _at(f"gold.features.{ts.features.split('.', 1)[-1]}.passthrough"), \
                    f"{column!r} is a column of dataset.key: the training set leaves key columns out of the " \
                    "features (an event id predicts nothing), so naming it here would be silently ignored. " \
                    "List it in gold.training_set.categorical to use it as a feature (a station or shop id " \
                    "is a category), or remove it from passthrough"


def _outcome_problems(name: str, features: FeatureSetConfig, dataset: DatasetConfig) -> Iterator[Problem]:
    """Late-arriving columns only in outcome windows; an outcome window only over them."""
    late = dataset.late_columns()
    where = f"gold.features.{name}"
    for column in sorted(late & set(features.passthrough)):
        yield _at(f"{where}.passthrough"), \
            f"{column!r} is a late-arriving outcome (dataset.outcomes / the value label): not known at its own " \
            "event's time, so never a feature of it; aggregate earlier events' values in outcome_windows"
    for group_name, group in features.groups.items():
        for column in sorted(late & {*group.aggs, *group.last_value}):
            yield _at(f"{where}.groups.{group_name}"), \
                f"{column!r} is a late-arriving outcome: a window over event time would count values not yet " \
                f"known; move it to {where}.outcome_windows, which counts each from when it became known"
    for group_name, outcome_group in features.outcome_windows.items():
        unknown = [c for c in outcome_group.aggs if dataset.outcome(c) is None]
        if unknown:
            yield _at(f"{where}.outcome_windows.{group_name}.aggs"), \
                f"{unknown} are not late-arriving columns: declare them in dataset.outcomes (column -> when it is " \
                f"known), or aggregate them in {where}.groups; outcomes: {sorted(late)}"
            continue
        times = {dataset.outcome(c)[1] for c in outcome_group.aggs}  # type: ignore[index]
        if len(times) > 1 and outcome_group.count:
            yield _at(f"{where}.outcome_windows.{group_name}.count"), \
                f"its columns become known at different times ({sorted(times)}), so \"outcomes known in the " \
                "window\" has no one answer: set `count: false` and add the `count` aggregate to the columns " \
                "whose known values you want counted"


def _event_columns(config: LakeboostConfig, dataset: DatasetConfig) -> set[str] | None:
    """The columns of `dataset.events` when the config declares them (a silver table), else None."""
    silver = config.silver.tables.get(dataset.events.removeprefix("silver.")) \
        if dataset.events.startswith("silver.") else None
    return set(silver.columns) if silver is not None else None


def _lag_problems(name: str, features: FeatureSetConfig, dataset: DatasetConfig,
                  columns: set[str] | None) -> Iterator[Problem]:
    """Lags reach back a positive period; lag and previous columns are event columns or outcomes."""
    where = f"gold.features.{name}"
    not_values = {*dataset.key, dataset.event_time, dataset.date_column}
    named = [(f"{where}.lags.{g}.columns", list(group.columns)) for g, group in features.lags.items()]
    named += [(f"{where}.previous.{g}.columns", list(group.columns)) for g, group in features.previous.items()]
    for at, lagged in named:
        unknown = [c for c in lagged if dataset.outcome(c) is None
                   and (c in not_values or (columns is not None and c not in columns))]
        if unknown:
            yield _at(at), \
                f"{unknown} are not value columns of {dataset.events}: name columns of its events (not its key, " \
                f"event time or date) or late-arriving outcomes (dataset.outcomes: {sorted(dataset.late_columns())})" \
                + (f"; its columns: {sorted(columns - not_values)}" if columns is not None else "")
    for group_name, group in features.lags.items():
        for column, lags in group.columns.items():
            bad = [str(k) for k in lags if k.total_seconds() <= 0]
            if bad:
                yield _at(f"{where}.lags.{group_name}.columns.{column}"), \
                    f"lags {bad} look no period back: a lag is the value a positive period before (1h, 24h, 7d)"
            if not lags:
                yield _at(f"{where}.lags.{group_name}.columns.{column}"), \
                    "no lags: give the periods back, e.g. [1h, 24h]"
    # Each of these groups writes `_known_as_of_<group>` (or `_known_at_or_before_<group>`).
    audited = [*features.outcome_windows, *features.label_rates]
    for kind, names in (("lags", features.lags), ("previous", features.previous)):
        for group_name in names:
            if group_name in audited:
                yield _at(f"{where}.{kind}.{group_name}"), \
                    f"{group_name!r} also names an outcome window, label rate, lag or previous group of {where}: " \
                    "each writes its own known-as-of column for the leakage audit; rename one of them"
            audited.append(group_name)
    for group_name, previous in features.previous.items():
        if previous.within.total_seconds() <= 0:
            yield _at(f"{where}.previous.{group_name}.within"), \
                f"{previous.within} looks nowhere back: how far back previous events count (e.g. 7d)"


def _metric_problems(config: LakeboostConfig) -> Iterator[Problem]:
    objective = config.training.model.objective
    checks = [(("training", "promotion", "metric"), config.training.promotion.metric),
              (("monitor", "metric"), config.monitor.metric)]
    if config.training.tune is not None:
        checks.append((("training", "tune", "metric"), config.training.tune.metric))
    for path, name in checks:
        problem = metric_problem(metric_for(name, objective), objective)
        if problem:
            yield path, f"{problem} (training.model.objective is {objective})"
    monitored = metric_for(config.monitor.metric, objective)
    if objective == "binary:logistic" and monitored not in ("pr_auc", "roc_auc") and monitored in METRICS:
        yield _at("monitor.metric"), \
            f"a binary model's windows are judged by pr_auc or roc_auc (binned per window), not {monitored!r}"
    calibration = config.training.calibration
    if "method" in calibration.model_fields_set and calibration.method != "none" \
            and objective != "binary:logistic":
        yield _at("training.calibration.method"), \
            f"{calibration.method} calibrates binary scores; {objective} models are not calibrated (use none)"
