"""A Spark standalone cluster on one machine: a master and workers as processes, for tests and demos.

So that `spark-submit.sh --master spark://...` can be exercised end to end:

    with StandaloneCluster(work_dir, workers=2, cores=1, memory="2g") as cluster:
        subprocess.run(["./spark-submit.sh", "--master", cluster.master_url, "jobs/pipeline.py"])

or `python -m lakeboost.spark.cluster start --workers 2` (runs until interrupted). What a job
ships to the executors is lakeboost.pack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyspark

from lakeboost.errors import EnvironmentSetupError
from lakeboost.spark.java import ensure_java

log = logging.getLogger(__name__)
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now (the OS picks; a race with other starters is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def group_alive(pgid: int) -> bool:
    """True while any process of the process group `pgid` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class _Daemon:
    name: str
    process: subprocess.Popen[bytes]
    log_file: Path
    handle: IO[bytes]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


@dataclass
class StandaloneCluster:
    """A master and `workers` workers (`cores` and `memory` each) bound to `host`, logs under `work_dir`."""

    work_dir: Path
    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    host: str = "127.0.0.1"
    spark_home: Path = field(default_factory=lambda: Path(pyspark.__file__).parent)
    master_port: int = field(default_factory=free_port)
    webui_port: int = field(default_factory=free_port)
    daemons: list[_Daemon] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    @property
    def webui_url(self) -> str:
        return f"http://{self.host}:{self.webui_port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
        return {**env, "SPARK_HOME": str(self.spark_home), "SPARK_LOCAL_IP": self.host}

    def _spawn(self, name: str, args: list[str]) -> None:
        logs = self.work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_file = logs / f"{name}.log"
        handle = log_file.open("ab")
        # A session (process group) per daemon: stopping it also ends the executors and Python
        # workers a worker started, which inherit the group.
        process = subprocess.Popen([str(self.spark_home / "bin" / "spark-class"), *args], env=self.environment(),
                                   cwd=self.work_dir, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.daemons.append(_Daemon(name, process, log_file, handle))
        log.info("started %s (pid %d), log %s", name, process.pid, log_file)

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        """Start the master and the workers; return once all workers are registered and alive.

        Raises:
            EnvironmentSetupError: no supported JDK, a daemon exited, or workers did not register in time.
        """
        ensure_java()
        self._spawn("master", [MASTER_CLASS, "--host", self.host, "--port", str(self.master_port),
                               "--webui-port", str(self.webui_port)])
        for index in range(self.workers):
            work = self.work_dir / f"worker-{index}"
            work.mkdir(parents=True, exist_ok=True)
            self._spawn(f"worker-{index}", [WORKER_CLASS, self.master_url, "--host", self.host,
                                            "--cores", str(self.cores), "--memory", self.memory,
                                            "--webui-port", str(free_port(self.host)), "--work-dir", str(work)])
        self.wait_for_workers(timeout)
        return self

    def state(self) -> dict[str, Any]:
        """The master's status JSON (workers, cores, memory, applications)."""
        with urllib.request.urlopen(f"{self.webui_url}/json", timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> list[dict[str, Any]]:
        return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]

    def wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        alive: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            for daemon in self.daemons:
                if daemon.process.poll() is not None:
                    raise EnvironmentSetupError(
                        f"spark standalone {daemon.name} exited with {daemon.process.returncode}; "
                        f"log {daemon.log_file}:\n{daemon.log_tail()}")
            try:
                alive = self.alive_workers()
            except OSError:
                alive = []  # the master's web UI is not up yet
            if len(alive) >= self.workers:
                log.info("standalone cluster %s: %d workers alive", self.master_url, len(alive))
                return
            time.sleep(1)
        raise EnvironmentSetupError(
            f"{len(alive)} of {self.workers} workers registered with {self.master_url} within {timeout:.0f}s; "
            f"see the logs under {self.work_dir / 'logs'}")

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate every daemon's process group (workers first), then kill what is left.

        Executors inherit their worker's group; pyspark's Python daemons start groups of their own
        and exit when their executor does, so they are found by working directory and killed only
        if they outlive it.
        """
        for daemon in reversed(self.daemons):
            if group_alive(daemon.process.pid):
                os.killpg(daemon.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for daemon in reversed(self.daemons):
            while group_alive(daemon.process.pid) and time.monotonic() < deadline:
                daemon.process.poll()  # reap the leader so the group can empty
                time.sleep(0.2)
            if group_alive(daemon.process.pid):
                log.warning("%s did not stop within %.0fs; killing it", daemon.name, timeout)
                os.killpg(daemon.process.pid, signal.SIGKILL)
            daemon.process.wait(timeout=timeout)
            daemon.handle.close()
        while self.leftover_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.leftover_processes():
            log.warning("process %d under %s outlived its worker; killing it", pid, self.work_dir)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def leftover_processes(self) -> list[int]:
        """Live (non-zombie) processes in a daemon's group or working under `work_dir`."""
        groups = {d.process.pid for d in self.daemons}
        work_dir = str(self.work_dir.resolve())
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                stat = (proc / "stat").read_text()
                state, _, pgid = stat[stat.rindex(")") + 2:].split()[:3]
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue  # exited meanwhile, or not ours to inspect
            if state != "Z" and (int(pgid) in groups or cwd == work_dir or cwd.startswith(work_dir + "/")):
                found.append(int(proc.name))
        return found

    def processes_gone(self) -> bool:
        return all(d.process.poll() is not None for d in self.daemons) and not self.leftover_processes()

    def __enter__(self) -> StandaloneCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakeboost.spark.cluster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run a standalone cluster on loopback until interrupted")
    start.add_argument("--workers", type=int, default=2)
    start.add_argument("--cores", type=int, default=1, help="cores per worker")
    start.add_argument("--memory", default="2g", help="memory per worker")
    start.add_argument("--work-dir", type=Path, default=Path("build/standalone"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Stop the daemons on Ctrl-C and on `kill` alike (a background job may ignore SIGINT).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    with StandaloneCluster(args.work_dir.resolve(), workers=args.workers, cores=args.cores,
                           memory=args.memory) as cluster:
        log.info("master %s, web UI %s; submit with ./spark-submit.sh --master %s jobs/pipeline.py "
                 "(Ctrl-C stops the cluster)", cluster.master_url, cluster.webui_url, cluster.master_url)
        with contextlib.suppress(KeyboardInterrupt):
            while all(d.process.poll() is None for d in cluster.daemons):
                time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
