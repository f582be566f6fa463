"""`streams.profile`: the CPU-per-event tool, and the timer's daily scans it can interleave."""

from __future__ import annotations

import doctest
import json
from datetime import datetime

import pytest

import streams.profile
from rules.decide import scan_day
from rules.policy import load_policy
from streams.bench import simulated_events
from streams.commands import ScanRequest
from streams.profile import profile_decisions, with_daily_scans


def test_doctests() -> None:
    result = doctest.testmod(streams.profile)
    assert result.attempted > 0 and result.failed == 0


def _day(value: bytes) -> object:
    moment = datetime.fromisoformat(json.loads(value)["time"].replace("Z", "+00:00"))
    return scan_day(moment, load_policy())


def test_each_scan_day_starts_with_a_scan_of_every_account_seen_before_it() -> None:
    records = simulated_events(400, 7)
    runs = with_daily_scans(records, load_policy())

    events = [record for kind, run in runs if kind == "events" for record in run]
    assert events == records  # nothing lost, nothing reordered
    seen: list[str] = []
    for index, (kind, run) in enumerate(runs):
        if kind == "events":
            assert len({_day(value) for _, value in run}) == 1  # one scan day per run of events
            seen.extend(dict.fromkeys(key.decode() for key, _ in run if key.decode() not in seen))
            continue
        before, after = runs[index - 1], runs[index + 1]
        assert before[0] == after[0] == "events"
        requests = [ScanRequest.model_validate_json(value) for _, value in run]
        assert [account for request in requests for account in request.account_ids] == seen
        assert len({request.at for request in requests}) == 1
        day = scan_day(requests[0].at, load_policy())
        assert day == _day(after[1][0][1]) and day != _day(before[1][-1][1])
    assert sum(kind == "scans" for kind, _ in runs) > 1


def test_daily_scans_are_a_worker_mode_measurement() -> None:
    with pytest.raises(ValueError, match="worker-mode"):
        profile_decisions(10, mode="offline", daily_scans=True)
