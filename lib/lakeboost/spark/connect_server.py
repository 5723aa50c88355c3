"""A local Spark Connect server in its own process: what the tests and a developer's laptop use to
run lakeboost the way Databricks serverless, standard-access clusters and Spark 4 thin clients do.

The server is pyspark's own `spark-submit` running Spark's `SparkConnectServer` (the Connect jar
ships in the pyspark wheel) with the Delta jars and Delta's session extension and catalog, bound
to loopback. Its Python workers (UDFs, `foreachBatch`, `mapInPandas`) run `python` with
`pythonpath` on their path, so functions lakeboost sends to the server import lakeboost there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

from lakeboost.errors import EnvironmentSetupError
from lakeboost.spark.java import ensure_java

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class ConnectServer:
    """A started server: its `sc://` URL, process and log; `stop()` ends it."""

    url: str
    process: subprocess.Popen
    log_path: Path
    started_seconds: float = field(default=0.0)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (Spark stops its context and the gRPC service), then SIGKILL if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_connect_server(*, jars: Sequence[str], conf: Mapping[str, str], workdir: Path,
                         master: str = "local[2]", host: str = "127.0.0.1", port: int | None = None,
                         python: str = sys.executable, pythonpath: Sequence[str] = (),
                         timeout: float = 120.0) -> ConnectServer:
    """Start a Spark Connect server and return once its gRPC port accepts connections.

    Args:
        jars: local jar files for the server's classpath (Delta, JDBC drivers).
        conf: Spark conf for the server (static settings such as `spark.sql.extensions` can only
            be set here, not by a Connect client).
        workdir: the server's working directory (its log, Derby metastore, default warehouse).
        pythonpath: directories the server's Python workers import from (lakeboost's `lib`).

    Raises:
        EnvironmentSetupError: no supported JDK, or the server exited or did not listen in time
            (the message carries the tail of its log).
    """
    ensure_java()
    port = port or free_port(host)
    spark_home = Path(pyspark.__file__).parent
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "connect-server.log"
    command = [str(spark_home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--master", master,
               "--conf", f"spark.connect.grpc.binding.address={host}",
               "--conf", f"spark.connect.grpc.binding.port={port}",
               "--conf", f"spark.pyspark.python={python}"]
    if jars:
        command += ["--jars", ",".join(jars)]
    for key, value in conf.items():
        command += ["--conf", f"{key}={value}"]
    command.append("spark-internal")
    env = {**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": python,
           "PYTHONPATH": os.pathsep.join([*pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])])}
    # The server is a Spark application of its own, never a Connect client.
    for key in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "PYSPARK_GATEWAY_PORT"):
        env.pop(key, None)
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = ConnectServer(f"sc://{host}:{port}", process, log_path)
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnvironmentSetupError(f"the Spark Connect server exited with {process.returncode} before "
                                        f"listening on {host}:{port}; its log ({log_path}):\n{server.log_tail()}")
        try:
            with socket.create_connection((host, port), timeout=1):
                server.started_seconds = time.monotonic() - started
                return server
        except OSError:
            time.sleep(0.25)
    server.stop()
    raise EnvironmentSetupError(f"the Spark Connect server did not listen on {host}:{port} within {timeout:.0f} s; "
                                f"its log ({log_path}):\n{server.log_tail()}")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m lakeboost.spark.connect_server`: a local Connect server for this config's Spark
    settings and jars, in the foreground until Ctrl-C; then `SPARK_REMOTE=<url> lakeboost run ...`."""
    import argparse

    import lakeboost
    from lakeboost.config import load_config
    from lakeboost.spark.session import DELTA_CONF, session_jars

    parser = argparse.ArgumentParser(prog="python -m lakeboost.spark.connect_server", description=main.__doc__)
    parser.add_argument("--env", default="local", help="config overlay (conf/<env>)")
    parser.add_argument("--conf-dir", default="conf", help="the application's config directory")
    parser.add_argument("--port", type=int, default=15002, help="gRPC port (Spark Connect's default: 15002)")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--workdir", default=".lakeboost-connect", help="the server's log and metastore")
    parser.add_argument("--pythonpath", action="append", default=[],
                        help="a directory the server's Python workers import from (an application's package)")
    args = parser.parse_args(argv)
    config = load_config(args.env, conf_dir=Path(args.conf_dir))
    library = str(Path(lakeboost.__file__).resolve().parents[1])
    server = start_connect_server(jars=session_jars(config.spark), conf={**DELTA_CONF, **config.spark.conf},
                                  workdir=Path(args.workdir).resolve(), master=args.master, port=args.port,
                                  pythonpath=[library, *args.pythonpath])
    print(f"Spark Connect server listening on {server.url} (log: {server.log_path}); "
          f"export SPARK_REMOTE={server.url}; Ctrl-C stops it")
    try:
        return server.process.wait()
    except KeyboardInterrupt:
        server.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
