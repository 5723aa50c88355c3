"""Typed, frozen configuration objects. `lib` receives these, never a raw dict."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_serializer, field_validator, model_validator

from lakeboost.config.base import Frozen, check_schema
from lakeboost.config.cost import CostConfig
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.durations import Duration
from lakeboost.config.features import GoldConfig
from lakeboost.config.monitoring import MonitorConfig, ScoringConfig
from lakeboost.config.silver import SilverConfig
from lakeboost.config.tables import FrameworkTables
from lakeboost.config.training import TrainingConfig
from lakeboost.redact import redact_url


class SparkConfig(Frozen):
    master: str = "local[*]"
    app_name: str = "lakeboost"
    conf: dict[str, str] = Field(default_factory=dict)
    # Maven coordinates group:artifact:version, resolved from Maven Central on first use.
    jvm_packages: tuple[str, ...] = ()
    # Air-gapped clusters: a directory of pre-fetched jars used instead of resolving packages.
    jars_dir: str | None = None

    @field_validator("conf", mode="before", json_schema_input_type=dict[str, str | int | float | bool])
    @classmethod
    def _stringify(cls, value: object) -> object:
        # YAML turns `4` into an int and `false` into a bool; Spark wants strings.
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value

    @field_validator("jvm_packages")
    @classmethod
    def _coordinates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for coordinate in value:
            if coordinate.count(":") != 2:
                raise ValueError(f"expected 'group:artifact:version', found {coordinate!r}")
        return value


class StorageConfig(Frozen):
    # A local directory or a cloud URI (s3a://, abfss://, dbfs:/) under which Delta tables live.
    root: str = "data/lakehouse"
    # Where raw source files land (the demo generator writes here).
    landing: str = "data/landing"
    # When set (e.g. "main"), tables are metastore tables `<catalog>.<layer>.<table>` (a schema per layer).
    catalog: str | None = None
    # The framework's own tables (quarantines, data quality, feature state, training set).
    tables: FrameworkTables = FrameworkTables()


class LoggingConfig(Frozen):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ApplicationConfig(Frozen):
    """The application this config belongs to: its name and the Python modules it brings.

    `modules` are imported when the config loads, before it is validated: they register the
    application's steps, feature functions and config sections (lakeboost.plugins).
    `python_path` entries (relative to the config directory) are put on sys.path first.
    """

    name: str = "lakeboost"
    python_path: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()


class PipelineConfig(Frozen):
    """The steps `jobs/pipeline.py` runs, in order; default: the framework's steps this config
    enables (score_stream needs scoring.stream, the steps from features on need a dataset)."""

    steps: tuple[str, ...] | None = None


class FileSourceConfig(Frozen):
    """A directory of files read incrementally (Structured Streaming file source)."""

    format: Literal["csv", "json", "parquet"]
    path: str
    declared_schema: dict[str, str] | None = Field(None, alias="schema")
    options: dict[str, str] = Field(default_factory=dict)
    # available_now: process what has landed, then stop (batch and scheduled runs).
    # processing_time: keep running, one micro-batch per `interval` (continuous mode).
    trigger: Literal["available_now", "processing_time"] = "available_now"
    interval: Duration = Duration(10)
    max_files_per_trigger: int | None = Field(None, ge=1)
    on_type_change: Literal["fail", "cast"] = "fail"

    _schema_ok = field_validator("declared_schema")(check_schema)

    @model_validator(mode="after")
    def _text_formats_need_schema(self) -> FileSourceConfig:
        if self.format in ("csv", "json") and not self.declared_schema:
            raise ValueError(
                f"format {self.format!r} needs a `schema` (column: type); inferring types from "
                "text files makes bronze depend on which file arrived first"
            )
        multiline = {k.lower(): v for k, v in self.options.items()}.get("multiline", "false")
        if self.format == "json" and str(multiline).lower() == "true":
            raise ValueError(
                "options.multiLine: JSON sources are read as JSON lines (one object per line), so "
                "that fields the schema does not declare can be kept in _rescued_data; convert "
                "multi-line JSON to JSON lines before it lands"
            )
        return self


class JdbcPartitioning(Frozen):
    column: str
    lower_bound: int
    upper_bound: int
    num_partitions: int = Field(ge=1)


class JdbcTimeouts(Frozen):
    """How long a JDBC read may wait: a database that accepts the connection and never answers
    fails the job within these, naming the source, instead of hanging it."""

    connect: Duration = Duration(30)  # opening the TCP connection and logging in
    socket: Duration = Duration(10 * 60)  # any one wait for the server's next bytes
    query: Duration = Duration(3600)  # one statement, end to end (Spark's `queryTimeout`)


class JdbcSourceConfig(Frozen):
    """A relational table or query read over JDBC."""

    format: Literal["jdbc"]
    url: str
    table: str | None = None
    query: str | None = None
    driver: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    partitioning: JdbcPartitioning | None = None
    fetch_size: int = Field(10_000, ge=1)
    # High-water mark column: only rows at or above the last ingested maximum are read (rows
    # already in bronze are recognised by their content and not inserted twice).
    incremental_column: str | None = None
    on_type_change: Literal["fail", "cast"] = "fail"
    timeouts: JdbcTimeouts = JdbcTimeouts()

    @field_serializer("url", when_used="json")
    def _url_without_credentials(self, url: str) -> str:
        # The config is recorded with every model (MLflow's config.json): never a credential.
        return redact_url(url)

    @field_validator("user", "password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `${ENV:X:-}` yields "" when X is unset: that means "no credential", not an empty one.
        return None if value == "" else value

    @model_validator(mode="after")
    def _table_xor_query(self) -> JdbcSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of `table` or `query`")
        if self.query is not None and self.partitioning is not None:
            raise ValueError("`partitioning` needs `table`, not `query` (Spark's JDBC reader rule)")
        return self

    @property
    def resolved_driver(self) -> str:
        if self.driver:
            return self.driver
        for prefix, driver in _KNOWN_DRIVERS.items():
            if self.url.startswith(prefix):
                return driver
        raise ValueError(f"no `driver` given and none known for url {self.url.split('?')[0]!r}")


# Kafka reader options whose value is a credential: recorded with every model as "***".
_SECRET_OPTION = re.compile(r"jaas|password|secret|token|key\.pem|keystore\.key", re.IGNORECASE)


class KafkaSourceConfig(Frozen):
    """A Kafka topic (or topics matching a pattern) read with Spark's Kafka source.

    `bootstrap_servers` and credentials come from the environment (`${ENV:KAFKA_BOOTSTRAP_SERVERS}`,
    `options: {kafka.sasl.jaas.config: "${ENV:KAFKA_SASL_JAAS_CONFIG}"}`), never from YAML.
    """

    format: Literal["kafka"]
    bootstrap_servers: str = Field(min_length=1)
    topic: str | None = None  # Spark's `subscribe`: one topic or a comma-separated list
    topic_pattern: str | None = None  # Spark's `subscribePattern`: a Java regex
    value_format: Literal["json", "csv"] = "json"
    declared_schema: dict[str, str] = Field(alias="schema")
    # Parser options for the value (CSV `sep`, JSON's `allowComments`, ...).
    value_options: dict[str, str] = Field(default_factory=dict)
    # Spark Kafka source options passed through (`kafka.security.protocol`, `kafka.sasl.*`,
    # `minPartitions`, ...).
    options: dict[str, str] = Field(default_factory=dict)
    # Where a new query starts ("earliest", "latest" or Spark's per-partition JSON); a query
    # with a checkpoint resumes from it whatever this says.
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = Field(None, ge=1)
    fail_on_data_loss: bool = True
    trigger: Literal["available_now", "processing_time"] = "available_now"
    interval: Duration = Duration(10)
    on_type_change: Literal["fail", "cast"] = "fail"

    _schema_ok = field_validator("declared_schema")(check_schema)

    @field_serializer("options", when_used="json")
    def _options_without_credentials(self, options: dict[str, str]) -> dict[str, str]:
        return {k: ("***" if _SECRET_OPTION.search(k) else v) for k, v in options.items()}

    @model_validator(mode="after")
    def _one_subscription(self) -> KafkaSourceConfig:
        if (self.topic is None) == (self.topic_pattern is None):
            raise ValueError("set exactly one of `topic` (subscribe) or `topic_pattern` (subscribePattern)")
        if not self.declared_schema:
            raise ValueError("a Kafka source needs a `schema` (column: type) for its values")
        reserved = [k for k in self.options if k.lower() in _READER_OWNED]
        if reserved:
            raise ValueError(f"options {reserved} are set by lakeboost from the source's own keys "
                             "(bootstrap_servers, topic/topic_pattern, starting_offsets, "
                             "max_offsets_per_trigger, fail_on_data_loss); set those instead")
        return self


_READER_OWNED = {"kafka.bootstrap.servers", "subscribe", "subscribepattern", "assign", "startingoffsets",
                 "maxoffsetspertrigger", "failondataloss", "includeheaders"}


_KNOWN_DRIVERS = {
    "jdbc:sqlite:": "org.sqlite.JDBC",
    "jdbc:postgresql:": "org.postgresql.Driver",
}

SourceConfig = Annotated[FileSourceConfig | JdbcSourceConfig | KafkaSourceConfig, Field(discriminator="format")]


# monitor.label_maturity when neither it nor gold.training_set.label_maturity is set.
DEFAULT_MATURITY = Duration(30 * 86400)


class LakeboostConfig(Frozen):
    """The whole configuration, parsed once per job."""

    env: str = "local"
    application: ApplicationConfig = ApplicationConfig()
    pipeline: PipelineConfig = PipelineConfig()
    spark: SparkConfig = SparkConfig()
    storage: StorageConfig = StorageConfig()
    logging: LoggingConfig = LoggingConfig()
    dataset: DatasetConfig | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    silver: SilverConfig = SilverConfig()
    gold: GoldConfig = GoldConfig()
    training: TrainingConfig = TrainingConfig()
    cost: CostConfig = CostConfig()
    scoring: ScoringConfig = ScoringConfig()
    monitor: MonitorConfig = MonitorConfig()
    # Sections an application registered (lakeboost.plugins.register_section), each validated
    # by the application's own model.
    sections: dict[str, BaseModel] = Field(default_factory=dict)

    def section(self, name: str) -> Any:
        """An application's config section. Raises ConfigError when it is not configured."""
        if name not in self.sections:
            from lakeboost.errors import ConfigError

            raise ConfigError(f"config section {name!r} is not configured (sections: {sorted(self.sections)})")
        return self.sections[name]

    @property
    def require_dataset(self) -> DatasetConfig:
        """The dataset description; ConfigError when the config has none."""
        if self.dataset is None:
            from lakeboost.errors import ConfigError

            raise ConfigError("`dataset` is not configured: the steps from features on need the dataset "
                              "description (dataset.events, .key, .event_time, .date_column, .label)")
        return self.dataset

    @model_validator(mode="after")
    def _resolve_defaults(self) -> LakeboostConfig:
        # Frozen model: the derived fields are set once, here, before anyone reads them.
        stream = self.scoring.stream
        if stream is not None and stream.quarantine_table is None:
            resolved = stream.model_copy(update={"quarantine_table": self.storage.tables.silver_quarantine})
            object.__setattr__(self, "scoring", self.scoring.model_copy(update={"stream": resolved}))
        if self.monitor.label_maturity is None:
            # The training set's maturity says how long labels take to arrive; the monitor waits as long.
            training_set = self.gold.training_set
            maturity = training_set.label_maturity if training_set and training_set.label_maturity else DEFAULT_MATURITY
            object.__setattr__(self, "monitor", self.monitor.model_copy(update={"label_maturity": maturity}))
        return self

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, object]) -> dict[str, object]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"source name {name!r} must be snake_case (it becomes a table name)")
        return value

