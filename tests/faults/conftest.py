"""Fault-suite fixtures: a crashable worker on the session's broker (fresh topics per test), and a
broker of the broker-restart test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.brokers import BrokerEngine, RunningBroker, free_port, start_broker
from tests.faults.harness import CrashableWorker


@pytest.fixture
def crashable(kafka_bootstrap: str, tmp_path: Path) -> Iterator[CrashableWorker]:
    """A worker (RocksDB store, 4 partitions, own prefix and app id) that the test starts and kills."""
    worker = CrashableWorker(kafka_bootstrap, tmp_path)
    worker.create_topics()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def own_apache_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBroker]:
    """An Apache Kafka broker of the module's own, so restarting it disturbs no other test."""
    data_dir = tmp_path_factory.mktemp("restartable-broker")
    with start_broker(BrokerEngine.APACHE, free_port(), data_dir=data_dir) as broker:
        yield broker
