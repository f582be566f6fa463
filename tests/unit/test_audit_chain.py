"""The audit hash chain detects tampering, deletion and reordering, and tolerates redelivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.audit import GENESIS_HASH, Actor, AuditDraft, AuditRecord, record_hash, seal, verify_chain


def _chain(account_id: str, length: int) -> list[AuditRecord]:
    records, head = [], GENESIS_HASH
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for index in range(length):
        draft = AuditDraft(
            audit_id=f"aud-{account_id}-{index}",
            at=start + timedelta(minutes=index),
            account_id=account_id,
            actor=Actor(type="engine", id="billwise"),
            kind="decision",
            policy_version="test",
            details={"n": index},
        )
        record = seal(draft, head)
        head = record.hash
        records.append(record)
    return records


def test_hash_is_sha256_of_canonical_json_without_hash() -> None:
    record = _chain("A", 1)[0]
    body = record.model_dump(mode="json")
    body.pop("hash")
    assert record.hash == record_hash(body)
    assert record.prev_hash == GENESIS_HASH


def test_interleaved_intact_chains_verify() -> None:
    a, b = _chain("A", 4), _chain("B", 3)
    interleaved = [a[0], b[0], a[1], a[2], b[1], b[2], a[3]]
    assert verify_chain(interleaved) is None


def test_tampered_record_is_found() -> None:
    records = [r.model_dump(mode="json") for r in _chain("A", 4)]
    records[2]["details"] = {"n": 99}
    problem = verify_chain(records)
    assert problem is not None and (problem.index, problem.reason) == (2, "tampered")


def test_deleted_record_breaks_the_next_link() -> None:
    records = _chain("A", 4)
    del records[1]
    problem = verify_chain(records)
    assert problem is not None and (problem.index, problem.reason) == (1, "broken_link")


def test_reordered_records_break_the_chain() -> None:
    records = _chain("A", 4)
    records[1], records[2] = records[2], records[1]
    problem = verify_chain(records)
    assert problem is not None and problem.reason == "broken_link"


def test_redelivered_identical_record_is_not_a_break() -> None:
    records = _chain("A", 3)
    assert verify_chain([records[0], records[1], records[1], records[2]]) is None
