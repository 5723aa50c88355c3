# lakeboost in a container: Python, a JDK 17 and the pipeline, with the JVM packages (Delta, JDBC
# drivers) resolved at build time, so a run needs no network for them.
#
#   docker build -t lakeboost:latest .
#   docker run --rm -e LAKEBOOST_PII_KEY=... -v lakeboost-data:/app/data lakeboost:latest
#   docker run --rm ... lakeboost:latest --env local --only ingest      # CMD replaced: job options
#
# bookworm (Debian 12) is named on purpose: it is the Debian release that packages OpenJDK 17.
FROM python:3.12-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    LAKEBOOST_CONF_DIR=/app/conf \
    LAKEBOOST_JAR_CACHE=/home/lakeboost/.cache/lakeboost/jars

# Debian's archive keeps only the current version of a package, so exact apt pins break the
# build at the next security update; the base image tag pins the Debian release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
    && rm -rf /var/lib/apt/lists/*

# A numeric user, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --gid 10001 lakeboost \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin lakeboost

WORKDIR /app

# Dependencies first, in their own layer (they change far less often than the code): an empty
# package stands in for lib/lakeboost while pip installs what setup.py requires.
COPY setup.py pyproject.toml ./
RUN mkdir -p lib/lakeboost \
    && touch lib/lakeboost/__init__.py \
    && pip install --no-cache-dir ".[spark]" \
    && rm -rf lib build

COPY lib ./lib
RUN pip install --no-cache-dir --no-deps --force-reinstall . \
    && rm -rf build lib/*.egg-info

# The image runs the editable conf/ here (LAKEBOOST_CONF_DIR, above), not the copy packed in the
# wheel, so a derived image can replace it; its relative paths (../data/...) resolve against it.
COPY conf ./conf
COPY examples ./examples
COPY jobs ./jobs
# What a run writes: the lakehouse (storage.root, storage.landing) and Spark's warehouse dir.
RUN install -d -o 10001 -g 10001 /app/data /app/spark-warehouse

USER 10001:10001
# Resolve the JVM packages now, into LAKEBOOST_JAR_CACHE (a fixed path, so a pod running as another
# uid still finds them); Maven's own repository is not kept.
RUN python -m lakeboost.spark.prefetch >/dev/null \
    && rm -rf "$HOME/.m2"

ENTRYPOINT ["python", "jobs/pipeline.py"]
CMD ["--env", "local"]
