"""The broker crashes mid-stream and comes back: the worker recovers by itself and finishes the stream.

A broker of this module's own (Apache Kafka, KRaft, on its data directory) is SIGKILLed while the
worker is deciding a simulated practice's events, and restarted at once. Nobody touches the worker:
it must reconnect, rejoin its group, resume from its committed offsets and write every action the
offline core writes for the same events, with the audit chain intact. The recovery time (broker
ready again → the group's committed offset moves again) is printed with the other figures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from streams.brokers import RunningBroker
from tests.faults.harness import (
    OUTPUT_TOPICS,
    CrashableWorker,
    compare,
    offline_in_background,
    produce,
    progress,
    read_all,
    wait_drained,
    wait_for_progress,
)
from tests.faults.test_worker_kills import simulated_stream

EVENTS = 3000


def test_the_worker_recovers_by_itself_after_a_broker_crash(
    own_apache_broker: RunningBroker, tmp_path: Path
) -> None:
    worker = CrashableWorker(own_apache_broker.bootstrap_servers, tmp_path)
    worker.create_topics()
    records = simulated_stream(EVENTS, seed=5)
    expected_future = offline_in_background(records)
    try:
        worker.start()
        produce(worker.bootstrap, worker.topic("events"), records)
        before = wait_for_progress(worker, at_least=len(records) // 4, timeout_s=120)

        went_down = time.monotonic()
        own_apache_broker.restart(crash=True)
        back_up = time.monotonic()
        # Recovered: the worker commits past where it was when the broker came back.
        at_restart = progress(worker.bootstrap, worker.settings.app_id, worker.topic("events")).committed
        resumed = wait_for_progress(worker, at_least=at_restart + 1, timeout_s=120, poll_s=0.2)
        recovered = time.monotonic()
        drained = wait_drained(worker, timeout_s=180)
        assert worker.process is not None and worker.process.process.poll() is None, "the worker died"
        assert worker.incarnations == 1, "the worker was not restarted by the test"
    finally:
        worker.stop()

    result = compare(
        read_all(worker.bootstrap, [worker.topic(t) for t in OUTPUT_TOPICS]), expected_future.result(300)
    )
    figures = {
        "events": EVENTS,
        "committed_before_crash": before.committed,
        "broker_down_s": round(back_up - went_down, 1),
        "recovery_s": round(recovered - back_up, 1),
        "committed_after_recovery": resumed.committed,
        "drained": drained.committed,
        **result.figures(),
    }
    print("\nbroker restart figures:", json.dumps(figures))
    assert not result.conflicting and not result.missing and not result.unexpected
    assert result.chain_break is None
