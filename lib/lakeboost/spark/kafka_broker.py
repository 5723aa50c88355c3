"""A single-node Kafka broker in KRaft mode on loopback, run from Kafka's own jars on Maven Central.

For tests, the demo and local development: no Docker, no download outside Maven. The broker's
classpath (`org.apache.kafka:kafka_2.13` and its runtime dependencies) is resolved once by Maven
into the jar cache (lakeboost.spark.jars), then each start formats a fresh storage directory
(`kafka.tools.StorageTool format --standalone`) and runs `kafka.Kafka` with
process.roles=broker,controller, one node, replication factor 1, on free loopback ports.

    python -m lakeboost.spark.kafka_broker --dir /tmp/kafka     # prints the bootstrap servers
    scripts/start-kafka.sh                                       # the same, from a checkout
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

from lakeboost.errors import EnvironmentSetupError
from lakeboost.spark.jars import resolve_classpath
from lakeboost.spark.java import ensure_java

KAFKA_VERSION = "4.2.0"
# The broker, and an slf4j binding so that its log (and a start-up failure) is written somewhere.
BROKER_PACKAGES = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    "org.slf4j:slf4j-api:2.0.17",
    "org.apache.logging.log4j:log4j-slf4j2-impl:2.25.3",
)
# Kafka's command-line tools (the console producer the latency bench feeds): resolved only when used.
TOOLS_PACKAGES = (f"org.apache.kafka:kafka-tools:{KAFKA_VERSION}", *BROKER_PACKAGES[1:])
# The broker's own log line once it serves clients.
_STARTED = "Kafka Server started"
# A small heap, and C1 only: the broker of a test or a demo lives minutes on little data.
JVM_OPTIONS = ("-Xms128m", "-Xmx512m", "-XX:TieredStopAtLevel=1",
               "-Djava.awt.headless=true")
_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
"""


def broker_classpath() -> list[str]:
    """The broker's jars, resolved from Maven Central on first use (cached, see spark.jars)."""
    return resolve_classpath(BROKER_PACKAGES)


def console_producer(bootstrap_servers: str, topic: str, *, separator: str = "\t") -> subprocess.Popen[str]:
    """Kafka's console producer (`org.apache.kafka.tools.ConsoleProducer`) as a child process: each
    line written to its stdin, `key<separator>value`, is sent to `topic` at once (linger 0)."""
    classpath = os.pathsep.join(resolve_classpath(TOOLS_PACKAGES))
    argv = [ensure_java(), *JVM_OPTIONS, "-cp", classpath, "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server", bootstrap_servers, "--topic", topic,
            "--property", "parse.key=true", "--property", f"key.separator={separator}",
            "--producer-property", "linger.ms=0", "--producer-property", "acks=all"]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True, preexec_fn=_stop_with_parent)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop_with_parent() -> None:
    """In the broker's process before exec (Linux): SIGTERM it when the process that started it
    dies, so that a killed test run or script leaves no broker behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def server_properties(data_dir: Path, port: int, controller_port: int, partitions: int) -> str:
    """One node that is both broker and controller, every internal topic at replication 1."""
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data_dir / 'logs'}",
        f"num.partitions={partitions}",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "num.network.threads=2",
        "num.io.threads=2",
        "num.recovery.threads.per.data.dir=1",
        "",
    ])


class KafkaBroker:
    """A running single-node broker; a context manager that stops it (and only it) on exit.

    `bootstrap_servers` is what a client's `kafka.bootstrap.servers` takes.
    """

    def __init__(self, data_dir: Path, *, partitions: int = 1, port: int | None = None,
                 start_timeout: float = 120.0) -> None:
        self.data_dir, self.partitions = Path(data_dir), partitions
        self.port = port or free_port()
        self.controller_port = free_port()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> KafkaBroker:
        """Format fresh storage and start the broker; return once it serves clients.

        Raises:
            EnvironmentSetupError: no JDK 17/21 or Maven, or the broker did not start (its log's
            last lines are in the message).
        """
        started = time.monotonic()
        java = ensure_java()
        classpath = os.pathsep.join(broker_classpath())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        properties.write_text(server_properties(self.data_dir, self.port, self.controller_port, self.partitions))
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J.format(log=self.log_file, level="WARN"))
        base = [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
        # The JVM options of a pytest run (conftest's JAVA_TOOL_OPTIONS) are fine for the broker too.
        env = {**os.environ}
        formatted = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "--standalone", "--ignore-formatted",
             "--cluster-id", _cluster_id(), "--config", str(properties)],
            capture_output=True, text=True, env=env, check=False)
        if formatted.returncode != 0:
            raise EnvironmentSetupError(
                f"Kafka storage format failed in {self.data_dir}: "
                f"{(formatted.stdout + formatted.stderr).strip()[-1500:]}")
        out = (self.data_dir / "stdout.log").open("wb")
        self.process = subprocess.Popen([*base, "kafka.Kafka", str(properties)], stdout=out,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                        preexec_fn=_stop_with_parent)
        out.close()
        self._wait_started()
        self.start_seconds = round(time.monotonic() - started, 2)
        return self

    def _wait_started(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnvironmentSetupError(
                    f"the Kafka broker exited with {self.process.returncode} while starting: {self._tail()}")
            if self.log_file.exists() and _STARTED in self.log_file.read_text(errors="replace"):
                return
            time.sleep(0.1)
        self.stop()
        raise EnvironmentSetupError(
            f"the Kafka broker did not start within {self.start_timeout:.0f} s: {self._tail()}")

    def _tail(self) -> str:
        texts = [p.read_text(errors="replace") for p in (self.log_file, self.data_dir / "stdout.log") if p.exists()]
        return " | ".join("\n".join(texts).strip().splitlines()[-8:]) or "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL if it has not exited in `timeout`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def __enter__(self) -> KafkaBroker:
        return self.start() if self.process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakeboost.spark.kafka_broker",
                                     description="Run a single-node KRaft Kafka broker on loopback until stopped.")
    parser.add_argument("--dir", type=Path, required=True, help="storage and logs (formatted afresh)")
    parser.add_argument("--port", type=int, default=9092, help="client port (0: a free one)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of auto-created topics")
    args = parser.parse_args(argv)
    broker = KafkaBroker(args.dir, partitions=args.partitions, port=args.port or None).start()
    print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}  (started in {broker.start_seconds} s; "
          f"log {broker.log_file}; Ctrl-C stops it)", flush=True)
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping and broker.process is not None and broker.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
