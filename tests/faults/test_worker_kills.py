"""SIGKILL the worker at random points of a simulated practice's stream and restart it on the same data.

The issue asks for 50,000 events and several kills; the CI budget (the whole suite in a few minutes on
2 cores, where one decision costs ~3 ms) fits `EVENTS` = 10,000 and `KILLS` = 3. Raise both with
``BILLWISE_FAULT_EVENTS`` / ``BILLWISE_FAULT_KILLS`` for a longer run; ``BILLWISE_FAULT_SEED`` replays the
kill points of a failed run (the seed is printed).

After the last restart the worker must drain the topic by itself. Then, against the offline decision
core over the same records (`streams.offline`): every expected action is on ``actions``/``review``
with the same content (no loss), no action id carries two contents (identical redeliveries are
allowed and counted), the audit chain verifies, every account's final table state (the changelog)
equals the offline state, and the bad records interleaved on the accounts' own keys are dead-lettered
without blocking their partitions.
"""

from __future__ import annotations

import json
import os
import random
import time

from models.simulator import Practice
from tests.faults.harness import (
    OUTPUT_TOPICS,
    CrashableWorker,
    compare,
    fault_seed,
    final_states,
    keyed,
    offline_in_background,
    poison_records,
    produce,
    read_all,
    wait_drained,
    wait_for_progress,
)

EVENTS = int(os.environ.get("BILLWISE_FAULT_EVENTS", "10000"))
KILLS = int(os.environ.get("BILLWISE_FAULT_KILLS", "3"))
POISON_EVERY = 1500
"""One batch of bad records (`poison_records`) after every this many good events."""


def simulated_stream(events: int, seed: int = 11) -> list[tuple[bytes | None, bytes]]:
    """``events`` canonical events of a simulated practice, with bad records on real accounts' keys."""
    practice = Practice(seed=seed, patients=max(50, events // 13), days=365)
    records: list[tuple[bytes | None, bytes]] = []
    for index, event in enumerate(practice.events()):
        if index >= events:
            break
        records.append(keyed(event))
        if index and index % POISON_EVERY == 0:
            records.extend(poison_records(str(event["data"]["account_id"])))
    return records


def test_sigkill_at_random_points_loses_nothing_and_conflicts_nothing(crashable: CrashableWorker) -> None:
    seed = fault_seed()
    rng = random.Random(seed)
    records = simulated_stream(EVENTS)
    expected_future = offline_in_background(records)
    total = len(records)
    # Kill points: committed-offset thresholds spread over the stream, at random within their stretch.
    stretch = total / (KILLS + 1)
    kill_at = [int(stretch * (i + rng.uniform(0.3, 1.0))) for i in range(KILLS)]
    print(f"\nfault seed {seed}: {total} records, kills after ~{kill_at} committed")

    crashable.start()
    produce(crashable.bootstrap, crashable.topic("events"), records)
    killed: list[dict[str, float]] = []
    for threshold in kill_at:
        reached = wait_for_progress(crashable, at_least=threshold, timeout_s=240)
        time.sleep(rng.uniform(0.0, 0.8))  # a random moment, not just after a commit
        crashable.kill()
        started = time.monotonic()
        crashable.start()
        killed.append(
            {"committed": reached.committed, "restart_ready_s": round(time.monotonic() - started, 1)}
        )
    drained_at = wait_drained(crashable, timeout_s=300)

    records_out = read_all(crashable.bootstrap, [crashable.topic(t) for t in OUTPUT_TOPICS])
    expected = expected_future.result(timeout=300)
    result = compare(records_out, expected)
    figures = {
        "seed": seed,
        "events": EVENTS,
        "records_in": total,
        "kills_survived": len(killed),
        "kills": killed,
        "drained_committed": drained_at.committed,
        **result.figures(),
    }
    print("fault figures:", json.dumps(figures))

    assert len(killed) == KILLS
    assert not result.conflicting, f"action ids with two contents: {result.conflicting[:5]}"
    assert not result.missing, f"lost actions: {len(result.missing)} e.g. {result.missing[:5]}"
    assert not result.unexpected, f"actions the offline core does not make: {result.unexpected[:5]}"
    assert not result.different, f"actions differing from the offline core: {result.different[:5]}"
    assert result.chain_break is None, result.chain_break
    assert result.audit_missing == 0
    assert result.dead_letters >= expected.dead_letters > 0

    # Every event is reflected in state: each account's final table value is the offline state.
    states = final_states(crashable)
    assert set(states) == set(expected.states)
    differing = [account for account, state in expected.states.items() if states[account] != state]
    assert not differing, f"{len(differing)} accounts' state differs from offline, e.g. {differing[:3]}"
