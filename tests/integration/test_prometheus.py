"""Operator observability through real servers: Debian's Prometheus scrapes a running worker.

- Prometheus (the ``prometheus`` binary of Debian's package, never skipped: CI installs it) scrapes the
  ``engine`` fixture's worker every second with the shipped alert rules loaded; after a few sample
  events a PromQL query over its HTTP API returns the decision counter.
- The consumer-lag and table-size gauges (`streams.lag`) on a real worker: a burst produced while the
  worker is stopped (SIGSTOP) shows up as lag on the events topic's partitions, drains to zero, and the
  accounts table's key count matches the accounts sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streams.brokers import free_port
from streams.ingest import INPUT_TOPICS
from streams.kafka_io import produce_events
from streams.platform_ingress import PLATFORM_TOPICS
from streams.settings import StreamSettings
from streams.topics import ensure_topics
from streams.worker_process import WorkerProcess
from tests.integration.conftest import RunningEngine

pytestmark = [pytest.mark.broker]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "streams" / "sample_events.jsonl"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
T = TypeVar("T")


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if not found:
        pytest.fail(
            "the prometheus binary is missing: apt-get install prometheus (Debian's package; .ci/run)"
        )
    return found


def _wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 0.25) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class PrometheusServer:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        """The single sample of an instant query, or None when it has no result yet."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], PrometheusServer]]:
    """Starts Debian's Prometheus scraping ``127.0.0.1:<web port>`` every second, with our alert rules."""
    binary = _prometheus_binary()
    started: list[PrometheusServer] = []

    def start(worker_port: int) -> PrometheusServer:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": "billwise",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}],
                }
            ],
        }
        config_path = tmp_path / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        log_path = tmp_path / "prometheus.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = PrometheusServer(process, f"http://127.0.0.1:{port}", log_path)
        started.append(server)

        def ready() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited with {process.returncode}:\n{server.log_tail()}")
            try:
                return httpx.get(f"{server.url}/-/ready", timeout=1.0).status_code == 200 or None
            except httpx.HTTPError:
                return None

        _wait_for("prometheus to be ready", ready, timeout_s=30)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def _sample() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def test_prometheus_scrapes_the_worker_and_promql_returns_the_decision_counter(
    engine: RunningEngine, prometheus: Callable[[int], PrometheusServer]
) -> None:
    server = prometheus(engine.worker.web_port)
    _wait_for("the worker's target to be up", lambda: server.scalar('up{job="billwise"} == 1'), timeout_s=30)

    sent = asyncio.run(
        produce_events(engine.settings.kafka_bootstrap_servers, engine.topic("events"), _sample())
    )
    assert sent > 0

    decisions = _wait_for(
        "billwise_decisions_total > 0 in Prometheus",
        lambda: server.scalar("sum(billwise_decisions_total) > 0"),
        timeout_s=60,
    )
    assert decisions > 0
    by_kind = server.query("sum by (kind, channel, route) (billwise_decisions_total)")
    assert by_kind and all(series["metric"].get("kind") for series in by_kind)
    # What came in is counted too: the sample's events by type, through the same scrape.
    assert (server.scalar("sum(billwise_events_total)") or 0) > 0
    # The worker times its garbage collections: the dashboard's pause panels have data.
    assert (server.scalar('sum(billwise_gc_pause_seconds_count{generation="0"})') or 0) > 0

    # The real server loaded the shipped alert rules (promtool checks them too, in the unit tests).
    rules = httpx.get(f"{server.url}/api/v1/rules", timeout=5.0).json()["data"]["groups"]
    loaded = {rule["name"] for group in rules for rule in group["rules"]}
    assert {"BillwiseWorkerDown", "BillwiseConsumerLagHigh", "BillwiseDeadLettersHigh"} <= loaded
    assert server.scalar('count(ALERTS{alertname="BillwiseWorkerDown"})') is None


# --------------------------------------------------------------------------------------------------
# Consumer lag and table size on a real worker
# --------------------------------------------------------------------------------------------------

# A worker that installs the lag metrics itself (a no-op once `Engine` does it), ticking every second.
_LAG_WORKER = """
import asyncio, sys
from streams.app import Engine, faust_worker
from streams.lag import install_lag_metrics
from streams.settings import StreamSettings
from streams.topics import ensure_topics

settings = StreamSettings(web_port=int(sys.argv[1]))
asyncio.run(ensure_topics(settings))
engine = Engine(settings)
install_lag_metrics(engine.app, {"accounts": engine.accounts})
faust_worker(engine.app).execute_from_commandline()
"""


@pytest.fixture
def lag_engine(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningEngine]:
    run = uuid.uuid4().hex[:8]
    env = {
        "BILLWISE_TOPIC_PREFIX": f"lag{run}",
        "BILLWISE_APP_ID": f"billwise-lag{run}",
        "BILLWISE_PARTITIONS": "4",
        "BILLWISE_DATA_DIR": str(tmp_path / "worker-data"),
        "BILLWISE_LAG_INTERVAL_S": "1.5",
        "BILLWISE_TABLE_KEYS_INTERVAL_S": "1",
    }
    settings = StreamSettings(
        kafka_bootstrap_servers=kafka_bootstrap, topic_prefix=env["BILLWISE_TOPIC_PREFIX"], partitions=4
    )
    asyncio.run(ensure_topics(settings))
    port = free_port()
    log_path = tmp_path / "worker.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAG_WORKER, str(port)],
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    worker = WorkerProcess(process, port, log_path)
    with worker:
        worker.wait_ready(90)
        yield RunningEngine(settings, worker, time.monotonic() - started)


def _scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5.0).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _burst(template: dict[str, Any], count: int, run: str) -> list[dict[str, Any]]:
    events = []
    for i in range(count):
        event = json.loads(json.dumps(template))
        event["id"] = f"lag-{run}-{i}"
        event["subject"] = event["data"]["account_id"] = f"ACC-LAG-{i:05d}"
        event["data"]["patient_id"] = f"PT-LAG-{i:05d}"
        events.append(event)
    return events


def test_consumer_lag_per_partition_rises_under_a_burst_and_drains_and_table_keys_count_accounts(
    lag_engine: RunningEngine,
) -> None:
    port = lag_engine.worker.web_port
    events_topic = lag_engine.topic("events")

    def lag_series() -> dict[str, float] | None:
        series = {
            labels["partition"]: value
            for labels, value in _scrape(port).get("billwise_consumer_lag_messages", [])
            if labels["topic"] == events_topic
        }
        return series if len(series) == 4 else None

    # Every owned partition of the input topic has a series once the worker is up; nothing else does.
    try:
        idle = _wait_for("lag series for the 4 partitions of the events topic", lag_series, timeout_s=30)
    except AssertionError as exc:
        seen = _scrape(port).get("billwise_consumer_lag_messages")
        raise AssertionError(f"{exc}; scraped {seen}; worker log:\n{lag_engine.worker.log_tail()}") from None
    assert sorted(idle) == ["0", "1", "2", "3"] and set(idle.values()) == {0.0}
    topics = {labels["topic"] for labels, _ in _scrape(port).get("billwise_consumer_lag_messages", [])}
    prefix = events_topic.rsplit(".", 1)[0]
    inputs = {f"{prefix}.{name}" for name in (*INPUT_TOPICS, *PLATFORM_TOPICS)}
    assert topics == inputs, "only the agents' input topics, not changelogs"

    # A burst the worker cannot see yet (stopped) is lag as soon as it runs again.
    count = 10_000
    burst = _burst(_sample()[0], count, uuid.uuid4().hex[:6])
    process = lag_engine.worker.process
    process.send_signal(signal.SIGSTOP)
    try:
        asyncio.run(produce_events(lag_engine.settings.kafka_bootstrap_servers, events_topic, burst))
    finally:
        process.send_signal(signal.SIGCONT)
    peak = 0.0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        series = lag_series() or {}
        total = sum(series.values())
        peak = max(peak, total)
        if peak > 0 and series and total == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"lag did not rise and drain: peak {peak}, last {series}")
    assert 0 < peak <= count

    keys = _wait_for(
        "billwise_table_keys{table=accounts} to count the burst's accounts",
        lambda: next(
            (
                value
                for labels, value in _scrape(port).get("billwise_table_keys", [])
                if labels["table"] == "accounts" and value == count
            ),
            None,
        ),
        timeout_s=60,
    )
    assert keys == count
