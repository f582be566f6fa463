"""Shared pytest fixtures.

Sections: the Kafka-compatible broker (session scope). Add new sections below with a short header.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from streams.brokers import BrokerEngine, free_port, start_broker

# --------------------------------------------------------------------------------------------------
# Kafka-compatible broker
#
# Broker tests never skip. The broker is, in this order:
#   1. KAFKA_BOOTSTRAP_SERVERS, if set (an external broker; engine "external");
#   2. BILLWISE_TEST_BROKER=tansu|apache|testcontainers, if set (an explicit choice wins over detection);
#   3. testcontainers' Kafka, if a Docker engine answers (not the case in CI);
#   4. Apache Kafka 4 in KRaft mode from its Maven Central jars (the CI default; needs Java 17).
# A local broker gets a free port and a pytest temp dir, so its broker.log survives the run for
# inspection; it is stopped at the end of the session.
# --------------------------------------------------------------------------------------------------

_BROKER_CHOICES = ("tansu", "apache", "testcontainers")

# Workers started by the tests follow the events' clock for their daily scans: test events are dated in
# a simulated past (or now), and a wall-clock scan would decide them all again at today's date.
os.environ.setdefault("BILLWISE_SCAN_CLOCK", "events")


@dataclass(frozen=True)
class BrokerInUse:
    """What the broker fixtures hand out: the bootstrap address and the kind of broker behind it."""

    engine: str  # "apache", "tansu", "external" or "testcontainers"
    bootstrap_servers: str


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # no package, no socket, no daemon: all mean "no Docker here"
        return False
    return True


def _testcontainers_kafka() -> Iterator[BrokerInUse]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.kafka import KafkaContainer

    # KRaft, plus the transaction-log settings the container leaves at their multi-node defaults.
    container = (
        KafkaContainer("confluentinc/cp-kafka:7.6.0")
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    )
    with container as kafka:
        yield BrokerInUse("testcontainers", kafka.get_bootstrap_server())


@pytest.fixture(scope="session")
def broker_in_use(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInUse]:
    """The session's broker (see the section comment for how it is chosen)."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield BrokerInUse("external", external)
        return
    choice = os.environ.get("BILLWISE_TEST_BROKER", "").strip().lower()
    if choice and choice not in _BROKER_CHOICES:
        raise pytest.UsageError(f"BILLWISE_TEST_BROKER={choice!r}; expected one of {_BROKER_CHOICES}")
    if choice == "testcontainers" or (not choice and _docker_answers()):
        yield from _testcontainers_kafka()
        return
    engine = BrokerEngine(choice or "apache")
    data_dir = tmp_path_factory.mktemp(f"{engine}-broker")
    with start_broker(engine, free_port(), data_dir=data_dir) as broker:
        yield BrokerInUse(str(engine), broker.bootstrap_servers)


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_in_use: BrokerInUse) -> str:
    """Bootstrap servers ("host:port") of a running Kafka-compatible broker."""
    return broker_in_use.bootstrap_servers


@pytest.fixture(scope="session")
def broker_engine(broker_in_use: BrokerInUse) -> str:
    """Which broker `kafka_bootstrap` points at: "apache", "tansu", "external" or "testcontainers"."""
    return broker_in_use.engine
