"""A poison record never blocks its partition: bad records between good ones on the same key.

All records of one account share a key, so a partition; the good events after the bad records must be
decided, and every bad record dead-lettered with its kind.
"""

from __future__ import annotations

import json
from collections import Counter

from models.simulator import Practice
from tests.faults.harness import (
    OUTPUT_TOPICS,
    CrashableWorker,
    compare,
    keyed,
    offline_expectation,
    poison_records,
    produce,
    read_all,
    wait_drained,
)


def test_bad_records_between_good_ones_on_one_key_are_dead_lettered_and_the_rest_decided(
    crashable: CrashableWorker,
) -> None:
    events = list(Practice(seed=3, patients=12, days=120).events())
    account = str(events[0]["data"]["account_id"])
    mine = [e for e in events if e["data"]["account_id"] == account]
    records: list[tuple[bytes | None, bytes]] = []
    for event in mine:  # every good event of the account is followed by the whole set of bad ones
        records.append(keyed(event))
        records.extend(poison_records(account))
    records.extend(keyed(e) for e in events if e["data"]["account_id"] != account)
    expected = offline_expectation(records)

    crashable.start()
    produce(crashable.bootstrap, crashable.topic("events"), records)
    wait_drained(crashable, timeout_s=120)
    out = read_all(crashable.bootstrap, [crashable.topic(t) for t in OUTPUT_TOPICS])
    result = compare(out, expected)

    assert not result.missing and not result.conflicting and not result.unexpected
    letters = [json.loads(r.raw) for r in out if r.topic.endswith(".dlq")]
    assert len(letters) == len(mine) * len(poison_records(account)) == expected.dead_letters
    kinds = Counter(letter["error"]["type"] for letter in letters)
    assert set(kinds) >= {"invalid_json", "validation_error", "unknown_event_type"}, kinds
    # Every good event of the account came after bad records on its partition, and each was decided.
    triggered = {a["trigger"]["event_id"] for a in expected.actions.values() if a["account_id"] == account}
    streamed = {
        json.loads(r.raw)["trigger"]["event_id"] for r in out if r.topic.endswith((".actions", ".review"))
    }
    assert triggered <= streamed
