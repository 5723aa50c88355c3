"""Exception classes. Every message names what was expected, what was found and how to fix it."""

from __future__ import annotations


class LakeboostError(Exception):
    """Base class: jobs catch this, log its one-line message and exit non-zero."""

    exit_code = 1


class ConfigError(LakeboostError):
    """The configuration is invalid (file, key, expected vs found)."""

    exit_code = 2


class EnvironmentSetupError(LakeboostError):
    """The machine lacks something lakeboost needs (a JDK, Maven, a JVM package)."""

    exit_code = 3


class SourceError(LakeboostError):
    """A declared source cannot be read (missing path, unreachable database, bad credentials)."""

    exit_code = 4


class SchemaDriftError(LakeboostError):
    """Incoming data changed a column's type against the table it is written to."""

    exit_code = 5


class TableNotFoundError(LakeboostError):
    """A logical table name resolves to a location that holds no Delta table yet."""

    exit_code = 6


class DataContractError(LakeboostError):
    """A data-quality expectation with action `fail` did not hold."""

    exit_code = 7


class PiiKeyError(LakeboostError):
    """The HMAC key for hashing personal data is missing or too weak (there is no unkeyed fallback)."""

    exit_code = 8


class LeakageError(LakeboostError):
    """A training set would let a feature see its label or its own future."""

    exit_code = 9


class TrainingError(LakeboostError):
    """Training cannot start or did not finish (pre-flight refusal, failed fit after retries)."""

    exit_code = 10


class ModelNotFoundError(LakeboostError):
    """The registry has no model (version or alias) by that name."""

    exit_code = 11


class ModelFormatError(LakeboostError):
    """A model's stored metadata (lakeboost_model.json) this lakeboost cannot read: written by a
    newer one, with fields it does not know."""

    exit_code = 11  # as ModelNotFoundError: the job has no model it can load


class ScoringError(LakeboostError):
    """Rows cannot be scored (empty input, features the model expects are missing)."""

    exit_code = 12


class IntegrationError(LakeboostError):
    """An integration cannot be built as configured (a lookup key that repeats)."""

    exit_code = 7


class ConcurrentWriteError(LakeboostError):
    """Another writer changed a table this write depends on, and the write cannot simply be retried."""

    exit_code = 13
