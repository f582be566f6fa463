"""The daily-scan timer's requests: grouped by the partition Kafka gives each account, in bounded records."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

import streams.commands
from streams.commands import MAX_SCAN_ACCOUNTS, ScanRequest, scan_requests

AT = datetime(2026, 3, 2, 5, tzinfo=UTC)
accounts = st.lists(st.text("ACG-0123456789", min_size=1, max_size=12), max_size=400, unique=True)


def test_doctests() -> None:
    result = doctest.testmod(streams.commands)
    assert result.failed == 0 and result.attempted >= 4


@given(accounts, st.integers(1, 12))
def test_every_account_is_named_once_where_kafka_routes_it(ids: list[str], partitions: int) -> None:
    route = DefaultPartitioner()
    every = list(range(partitions))
    named: list[str] = []
    for key, value in scan_requests(ids, AT, partitions):
        request = ScanRequest.model_validate_json(value)
        assert key == request.account_ids[0].encode()
        assert 1 <= len(request.account_ids) <= MAX_SCAN_ACCOUNTS and request.at == AT
        # The record goes where its key is routed; each account's own records go there too.
        partition = route(key, every, every)
        assert {route(a.encode(), every, every) for a in request.account_ids} == {partition}
        named.extend(request.account_ids)
    assert sorted(named) == sorted(ids)
    # Within a partition the accounts keep their order (the scans' order offline and in the stream).
    for partition in range(partitions):
        mine = [a for a in ids if route(a.encode(), every, every) == partition]
        assert [a for a in named if a in set(mine)] == mine


def test_a_large_partition_is_split_into_bounded_records() -> None:
    ids = [f"ACC-{n}" for n in range(2 * MAX_SCAN_ACCOUNTS + 1)]
    records = scan_requests(ids, AT, partitions=1)
    sizes = [len(ScanRequest.model_validate_json(value).account_ids) for _, value in records]
    assert sizes == [MAX_SCAN_ACCOUNTS, MAX_SCAN_ACCOUNTS, 1]
