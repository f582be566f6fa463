"""The worker's decision path without Kafka: routing, dead letters, de-duplication, scans and drafts."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from inference.client import VllmClient
from inference.drafting import Drafter
from inference.stub import StubServer
from models.suite import ModelSuite
from rules import decide as decide_module
from rules.decide import daily_scan, scan_day
from rules.examples import communication, patient, plan
from rules.outputs import Decision, Output
from rules.policy import Policy, load_policy
from rules.state import AccountState
from schemas.actions import PATIENT_FACING_KINDS, Action, Scores
from schemas.audit import AuditRecord, verify_chain
from schemas.deadletter import DeadLetter
from schemas.events import CanonicalEvent
from streams import ingest as ingest_module
from streams.bench import simulated_events
from streams.commands import MAX_SCAN_ACCOUNTS, partition_of
from streams.ingest import InputRecord, Processor
from streams.offline import decide_lines

SAMPLE = Path("streams/sample_events.jsonl")
WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def _lines() -> list[bytes]:
    return [line for line in SAMPLE.read_bytes().splitlines() if b"sample-bad" not in line]


def _record(value: bytes, key: bytes | None, topic: str = "billing.events", offset: int = 7) -> InputRecord:
    return InputRecord(topic, 2, offset, key, value, WHEN)


def _key(line: bytes) -> bytes:
    return str(json.loads(line)["data"]["account_id"]).encode()


def _run(records: list[InputRecord], states: dict | None = None, **kwargs: object) -> list[Output]:
    processor = Processor(load_policy(), **kwargs)  # type: ignore[arg-type]
    states = states if states is not None else {}
    processed = asyncio.run(processor.process(records, states))
    states.update(processed.states)
    return processed.outputs


def _dead_letter(value: bytes, key: bytes | None, topic: str = "billing.events") -> DeadLetter:
    [output] = _run([_record(value, key, topic)])
    assert output.topic == "dlq"
    assert isinstance(output.value, DeadLetter)
    return output.value


def test_bad_json_is_dead_lettered_with_its_bytes_and_position() -> None:
    letter = _dead_letter(b'{"specversion": ', b"ACC-1")
    assert (letter.error.type, letter.source_topic, letter.partition, letter.offset) == (
        "invalid_json",
        "billing.events",
        2,
        7,
    )
    assert letter.raw == '{"specversion": ' and letter.raw_encoding == "utf-8"


def test_non_utf8_bytes_are_kept_as_base64() -> None:
    raw = b"\x00\xff\xfe garbage"
    letter = _dead_letter(raw, b"ACC-1")
    assert letter.raw_encoding == "base64"
    assert base64.b64decode(letter.raw) == raw


def test_key_must_be_present_and_be_the_account_id() -> None:
    line = _lines()[0]
    assert _dead_letter(line, b"ACC-OTHER").error.type == "key_mismatch"
    assert _dead_letter(line, None).error.type == "key_mismatch"


def test_records_of_every_input_topic_are_validated() -> None:
    for topic in ("billing.review.decisions", "billing.access", "billing.scans", "billing.outcomes"):
        letter = _dead_letter(b'{"action_id": 3}', b"ACC-1", topic)
        assert letter.error.type == "validation_error", topic
        assert letter.error.path
    assert _dead_letter(b"{}", b"ACC-1", "billing.elsewhere").error.type == "unknown_topic"
    scan_of_nobody = b'{"account_ids": ["ACC-1"], "at": "2026-03-02T05:00:00Z"}'
    assert _dead_letter(scan_of_nobody, b"ACC-1", "billing.scans").error.type == "unknown_account"
    assert _dead_letter(scan_of_nobody, b"ACC-2", "billing.scans").error.type == "key_mismatch"


def test_a_batch_decides_like_one_record_at_a_time_and_redelivery_changes_nothing() -> None:
    lines = _lines()
    records = [_record(line, _key(line), offset=n) for n, line in enumerate(lines)]
    together = _run(records)
    states: dict[str, AccountState | None] = {}
    one_by_one = [output for record in records for output in _run([record], states)]
    assert [o.as_line() for o in together] == [o.as_line() for o in one_by_one]
    assert any(isinstance(o.value, Action) for o in together)
    assert _run(records, states) == []  # every event already applied


def test_a_redelivered_event_writes_its_account_state_again() -> None:
    """After a crash the local store can be ahead of the table's changelog: a redelivery re-sends it."""
    line = _lines()[0]
    first = asyncio.run(Processor(load_policy()).process([_record(line, _key(line))], {}))
    again = asyncio.run(Processor(load_policy()).process([_record(line, _key(line))], first.states))
    assert again.outputs == []
    assert again.states == first.states


def test_a_failing_decision_is_dead_lettered_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ArithmeticError("boom")

    monkeypatch.setattr(ingest_module, "decide", broken)
    line = _lines()[0]
    letter = _dead_letter(line, _key(line))
    assert letter.error.type == "decision_error"
    assert "ArithmeticError" in letter.error.message


def test_audit_requests_are_chained_into_the_accounts_trail() -> None:
    lines = _lines()
    states: dict[str, AccountState | None] = {}
    decided = _run([_record(line, _key(line)) for line in lines], states)
    request = {
        "account_id": "ACC-1001",
        "user_id": "u-1",
        "role": "collector",
        "at": "2026-03-20T10:00:00Z",
        "resource": "account",
    }
    [output] = _run([_record(json.dumps(request).encode(), b"ACC-1001", "billing.access")], states)
    assert isinstance(output.value, AuditRecord)
    assert (output.value.kind, output.value.actor.id, output.value.actor.role) == (
        "data_access",
        "u-1",
        "collector",
    )
    audit = [o.value for o in [*decided, output] if isinstance(o.value, AuditRecord)]
    assert verify_chain(audit) is None


def test_a_day_boundary_runs_the_missed_daily_scans_first() -> None:
    lines = _lines()
    states: dict[str, AccountState | None] = {}
    _run([_record(line, _key(line)) for line in lines], states)
    account = states["ACC-1002"]
    assert account is not None and account.last_scan_day is not None
    later = json.loads(next(line for line in lines if b'"ACC-1002"' in line and b"statement" in line))
    later.update(id="much-later", time="2026-05-20T15:00:00Z")
    later["data"]["statement_id"] = "STM-later"
    _run([_record(json.dumps(later).encode(), b"ACC-1002")], states)
    rescanned = states["ACC-1002"]
    assert rescanned is not None and rescanned.last_scan_day is not None
    assert rescanned.last_scan_day.isoformat() == "2026-05-20"


def _scan_record(account_ids: Sequence[str], at: str, offset: int = 0) -> InputRecord:
    value = json.dumps({"account_ids": list(account_ids), "at": at}).encode()
    return _record(value, account_ids[0].encode(), "billing.scans", offset)


def test_one_scan_request_for_many_accounts_decides_what_one_request_each_would() -> None:
    states: dict[str, AccountState | None] = {}
    events = simulated_events(1500, seed=3)
    _run([_record(value, key, offset=n) for n, (key, value) in enumerate(events)], states)
    accounts = [account_id for account_id, state in states.items() if state is not None][:MAX_SCAN_ACCOUNTS]
    at = "2026-09-01T05:00:00Z"  # weeks after the last event: the scans send reminders, not only quiet days
    one_each = dict(states)
    separately = [o for n, a in enumerate(accounts) for o in _run([_scan_record([a], at, n)], one_each)]
    together = asyncio.run(Processor(load_policy()).process([_scan_record(accounts, at)], states))
    assert [o.as_line() for o in together.outputs] == [o.as_line() for o in separately]
    assert sum(isinstance(o.value, Action) for o in together.outputs) > 10, "too few scans acted to compare"
    assert {**states, **together.states} == one_each
    # Every state is written for the request, which is on the accounts' partition.
    assert together.sources.keys() == together.states.keys() == set(accounts)
    assert {source.topic for source in together.sources.values()} == {"billing.scans"}


def test_a_scan_request_scans_only_the_known_accounts_of_its_partition() -> None:
    lines = _lines()
    states: dict[str, AccountState | None] = {}
    _run([_record(line, _key(line), offset=n) for n, line in enumerate(lines)], states)
    # With 8 partitions ACC-1001 and ACC-1003 share partition 4, ACC-1002 is on partition 3.
    processor = Processor(load_policy(), partitions=8)
    record = _scan_record(["ACC-1001", "ACC-1002", "ACC-1003", "ACC-NOBODY"], "2026-04-20T05:00:00Z")
    processed = asyncio.run(processor.process([record], states))
    assert set(processed.states) == {"ACC-1001", "ACC-1003"}
    assert all(state.last_scan_day.isoformat() == "2026-04-20" for state in processed.states.values())
    [letter] = [o.value for o in processed.outputs if o.topic == "dlq"]
    assert isinstance(letter, DeadLetter) and letter.error.type == "unknown_account"
    assert "'ACC-1002'" in letter.error.message and "'ACC-NOBODY'" in letter.error.message
    assert "'ACC-1001'" not in letter.error.message


@pytest.mark.parametrize("mode", ["good", "threat"])
def test_model_drafts_replace_templates_and_every_fallback_is_audited(mode: str) -> None:
    lines = _lines()

    async def scenario() -> list[Output]:
        async with StubServer(mode=mode) as stub:
            drafter = Drafter(VllmClient(stub.base_url, "stub", timeout_s=2.0), timeout_s=2.0)
            processor = Processor(load_policy(), drafter=drafter)
            try:
                processed = await processor.process([_record(line, _key(line)) for line in lines], {})
                return processed.outputs
            finally:
                await drafter.aclose()

    outputs = asyncio.run(scenario())
    actions = [o.value for o in outputs if isinstance(o.value, Action) and o.value.kind != "staff_task"]
    fallbacks = {
        o.value.action_id: o.value.details["reason"]
        for o in outputs
        if isinstance(o.value, AuditRecord) and o.value.kind == "draft_fallback"
    }
    assert actions
    for action in actions:
        assert action.message is not None
        if action.message.source == "template":
            assert action.action_id in fallbacks  # never a silent fallback
        else:
            assert (action.message.source, action.message.model) == ("llm", "stub")
    if mode == "good":
        assert any(action.message and action.message.source == "llm" for action in actions)
    else:
        assert set(fallbacks.values()) == {"threat"}
        assert len(fallbacks) == len(actions)


def test_a_slow_model_server_costs_one_timeout_per_batch_and_every_action_is_still_emitted() -> None:
    lines = _lines()

    async def scenario() -> tuple[list[Output], float]:
        async with StubServer(mode="slow", delay_s=2.0) as stub:
            drafter = Drafter(VllmClient(stub.base_url, "stub", timeout_s=0.5, max_retries=0), timeout_s=0.5)
            processor = Processor(load_policy(), drafter=drafter)
            try:
                started = time.monotonic()
                processed = await processor.process([_record(line, _key(line)) for line in lines], {})
                return processed.outputs, time.monotonic() - started
            finally:
                await drafter.aclose()

    outputs, elapsed = asyncio.run(scenario())
    templates = _run([_record(line, _key(line)) for line in lines])
    ids = {o.value.action_id for o in outputs if isinstance(o.value, Action)}
    assert ids == {o.value.action_id for o in templates if isinstance(o.value, Action)}
    reasons = {
        o.value.details["reason"]
        for o in outputs
        if isinstance(o.value, AuditRecord) and o.value.kind == "draft_fallback"
    }
    assert reasons == {"timeout"}
    assert elapsed < 2.0  # the drafts of a batch time out together, not one after another


def _as(event: CanonicalEvent, account_id: str, patient_id: str) -> InputRecord:
    """``event`` (a `rules.examples` one) for another account and patient, as a record keyed by it."""
    body = json.loads(event.model_dump_json())
    body["id"] = f"{body['id']}-{account_id}"
    body["data"].update(account_id=account_id, patient_id=patient_id)
    return _record(json.dumps(body).encode(), account_id.encode())


@pytest.mark.parametrize("same_person", [True, False])
def test_calls_on_a_persons_other_account_count_towards_the_weekly_limit(same_person: bool) -> None:
    """Four calls on one account, three on the other: if one person holds both, that is seven in seven
    days, and the staff call a missed plan raises waits for the next day (POLICY.md: per person)."""
    other_patient = "PT-1" if same_person else "PT-2"
    calls = [(d, "ACC-A", "PT-1") for d in (11, 12, 13, 14)]
    calls += [(d, "ACC-B", other_patient) for d in (15, 16, 17)]
    history = [_as(patient("2026-03-01T14:00:00Z"), "ACC-A", "PT-1")]
    history += [_as(patient("2026-03-01T14:00:00Z"), "ACC-B", other_patient)]
    history += [_as(communication(f"2026-03-{d}T15:00:00Z", "phone", "no_answer"), a, p) for d, a, p in calls]
    processor, states = Processor(load_policy()), dict[str, AccountState | None]()
    states.update(asyncio.run(processor.process(history, states)).states)
    # The missed plan in a batch of its own: the other account's contacts come from the store.
    missed = _as(plan("2026-03-17T18:00:00Z", missed=2), "ACC-A", "PT-1")
    outputs = asyncio.run(processor.process([missed], states)).outputs
    [task] = [o.value for o in outputs if isinstance(o.value, Action) and o.value.kind == "staff_task"]
    next_morning = datetime(2026, 3, 18, 8, tzinfo=ZoneInfo("America/New_York"))
    assert (task.not_before == next_morning) is same_person


def test_quiet_scans_decide_what_the_full_scans_decide_whatever_the_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every run of scans the worker answers as quiet (without scoring) is checked against `daily_scan`
    day after day at three very different propensities: same state, no output. The states are a
    simulated practice's."""
    real_quiet_scans = ingest_module.quiet_scans
    runs: list[int] = []

    def checking(
        state: AccountState, policy: Policy, moments: Sequence[datetime]
    ) -> tuple[int, AccountState]:
        quiet, after = real_quiet_scans(state, policy, moments)
        runs.append(quiet)
        for propensity in (0.001, 0.5, 0.999):
            scores = Scores(propensity_to_pay=propensity, bad_debt_risk=1 - propensity, model_version="t")
            full = state
            for moment in moments[:quiet]:
                decision = daily_scan(full, policy, moment, scores=scores)
                assert decision.outputs == ()
                full = decision.state
            assert full.model_dump_json() == after.model_dump_json()
        return quiet, after

    monkeypatch.setattr(ingest_module, "quiet_scans", checking)
    lines = [value for _, value in simulated_events(2500, seed=5)]
    # Without idle scans, as the worker with its scan timer off: accounts catch up several days at once.
    decide_lines(lines, load_policy(), learning=False, idle_scans=False)
    quiet_days = sum(runs)
    assert quiet_days > 1000, f"only {quiet_days} quiet scan days: the comparison proves little"
    assert 0 in runs, "no scan needed scores: the comparison proves nothing about may_fire"
    assert any(quiet > 1 for quiet in runs), "no run of quiet days was collapsed"


def test_messages_sent_by_daily_scans_keep_snapshots_for_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reminder a daily scan sends is learned from like one an event sends: its payment (or not)
    labels the propensity model's snapshot, and its channel the chooser's."""
    real_daily_scan = ingest_module.daily_scan
    real_decided = ModelSuite.decided
    scans_that_sent: set[tuple[str, datetime]] = set()
    snapshots: set[tuple[str, datetime]] = set()

    def scanning(state: AccountState, policy: Policy, now: datetime, **given: Any) -> Decision:
        decision = real_daily_scan(state, policy, now, **given)
        if any(
            isinstance(o.value, Action) and o.value.kind in PATIENT_FACING_KINDS for o in decision.outputs
        ):
            scans_that_sent.add((state.account_id, now))
        return decision

    def deciding(suite: ModelSuite, account_id: str, *args: Any, **kwargs: Any) -> None:
        snapshots.add((account_id, args[2]))
        real_decided(suite, account_id, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "daily_scan", scanning)
    monkeypatch.setattr(ModelSuite, "decided", deciding)
    lines = [value for _, value in simulated_events(2500, seed=5)]
    decide_lines(lines, load_policy(), learning=True, idle_scans=False)
    assert len(scans_that_sent) > 10, "too few scans sent a message: the check proves little"
    assert scans_that_sent <= snapshots


def test_scans_that_only_re_propose_open_offers_decide_what_the_full_session_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scan whose every candidate is an offer still open, unchanged, skips the Session's bookkeeping
    (`rules.decide.daily_scan`). Every scan of a simulated practice is decided both ways, with the
    worker's own scores: same state, same outputs."""
    real_daily_scan = ingest_module.daily_scan
    real_check = decide_module._only_open_offers
    taken = 0

    def counting(state: AccountState, candidates: Sequence[Any], now: datetime) -> bool:
        nonlocal taken
        answer = real_check(state, candidates, now)
        taken += answer and bool(candidates)
        return answer

    def never(state: AccountState, candidates: Sequence[Any], now: datetime) -> bool:
        return False

    def both_ways(state: AccountState, policy: Policy, now: datetime, **given: Any) -> Decision:
        monkeypatch.setattr(decide_module, "_only_open_offers", never)
        full = real_daily_scan(state, policy, now, **given)
        monkeypatch.setattr(decide_module, "_only_open_offers", counting)
        shortcut = real_daily_scan(state, policy, now, **given)
        assert (shortcut.outputs, shortcut.draft_requests) == (full.outputs, full.draft_requests)
        assert shortcut.state.model_dump_json() == full.state.model_dump_json()
        return shortcut

    monkeypatch.setattr(ingest_module, "daily_scan", both_ways)
    lines = [value for _, value in simulated_events(2500, seed=5)]
    decide_lines(lines, load_policy(), learning=True, idle_scans=False)
    assert taken > 100, f"only {taken} scans re-proposed open offers only: the comparison proves little"


def _by_day_interleaved(
    events: list[tuple[bytes, bytes]], partitions: int, seed: int
) -> list[tuple[bytes, bytes]]:
    """``events`` day by day (scan days), each day's records of the ``partitions`` partitions
    interleaved at random, as a worker reading them from Kafka may see them; each partition's order
    kept."""
    policy, rng = load_policy(), random.Random(seed)
    days: dict[date, dict[int, list[tuple[bytes, bytes]]]] = {}
    for key, value in events:
        day = scan_day(datetime.fromisoformat(json.loads(value)["time"]), policy)
        days.setdefault(day, {}).setdefault(partition_of(key.decode(), partitions), []).append((key, value))
    interleaved: list[tuple[bytes, bytes]] = []
    for day in sorted(days):
        queues = [list(queue) for queue in days[day].values()]
        while queues:
            queue = rng.choice(queues)
            interleaved.append(queue.pop(0))
            if not queue:
                queues.remove(queue)
    return interleaved


def test_what_the_models_learn_does_not_depend_on_how_partitions_interleave_within_a_day() -> None:
    """The models learn a day's labels at the next day's first event, in a fixed order (`models.suite`),
    so two workers that read the same days' records in different interleavings and batches decide
    alike, learning included. Learning each label as it came made them differ in most actions."""
    partitions, events = 4, simulated_events(3000, seed=5)
    replayed = datetime(2027, 6, 1, tzinfo=UTC)  # every event arrived after its time: all move the clock

    def run(records: list[tuple[bytes, bytes]], batch: int) -> tuple[list[str], dict, ModelSuite]:
        models = ModelSuite(monitored=False)
        processor = Processor(load_policy(), models=models, partitions=partitions)
        inputs = [
            InputRecord("billing.events", partition_of(key.decode(), partitions), n, key, value, replayed)
            for n, (key, value) in enumerate(records)
        ]
        states: dict[str, AccountState | None] = {}
        lines: list[str] = []
        for start in range(0, len(inputs), batch):
            processed = asyncio.run(processor.process(inputs[start : start + batch], states))
            states.update(processed.states)
            lines.extend(json.dumps(output.as_line(), sort_keys=True) for output in processed.outputs)
        return sorted(lines), states, models

    one_order, one_states, models = run(_by_day_interleaved(events, partitions, seed=1), batch=500)
    other_order, other_states, _ = run(_by_day_interleaved(events, partitions, seed=2), batch=37)
    assert one_order == other_order
    assert one_states == other_states
    versions = {json.loads(line)["value"].get("model_version") for line in one_order}
    assert models.propensity.labels > 100 and len(versions) > 10, "the models hardly learned: proves little"
