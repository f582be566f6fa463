"""The worker's cache of parsed account states: a read gives what the table holds, whatever it holds."""

from __future__ import annotations

import doctest
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

import streams.parsed_states
from rules.state import AccountState
from streams.parsed_states import PARSED_BYTES_PER_JSON_BYTE, ParsedStates


def _state(account: str, balance: str = "0.00") -> AccountState:
    return AccountState.new(account, "PT-1", "P-1").model_copy(update={"balance": Decimal(balance)})


def test_module_examples() -> None:
    result = doctest.testmod(streams.parsed_states)
    assert result.attempted > 0 and result.failed == 0


def test_a_state_written_elsewhere_is_parsed_from_the_table_not_taken_from_memory() -> None:
    cache = ParsedStates(budget_bytes=10_000_000)
    cache.remember(b"A-1", _state("A-1", "10.00"))
    elsewhere = _state("A-1", "25.50").model_copy(update={"last_scan_day": date(2026, 3, 1)})
    read = cache.parse(b"A-1", elsewhere.model_dump_json().encode())
    assert read == elsewhere


def test_the_budget_drops_the_least_recently_used_states() -> None:
    blob_size = len(_state("A-0").model_dump_json())
    cache = ParsedStates(budget_bytes=3 * blob_size * PARSED_BYTES_PER_JSON_BYTE)
    blobs = {key: cache.remember(key, _state(key.decode())) for key in (b"A-0", b"A-1", b"A-2")}
    first = cache.parse(b"A-0", blobs[b"A-0"])  # A-0 is now the most recently used
    cache.remember(b"A-3", _state("A-3"))  # over budget: A-1 goes
    assert [key in cache for key in (b"A-0", b"A-1", b"A-2", b"A-3")] == [True, False, True, True]
    assert cache.parse(b"A-0", blobs[b"A-0"]) is first


def test_a_zero_budget_keeps_nothing() -> None:
    cache = ParsedStates(budget_bytes=0)
    blob = cache.remember(b"A-1", _state("A-1"))
    assert len(cache) == 0
    assert cache.parse(b"A-1", blob) == _state("A-1")


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"A-1", b"A-2", b"A-3"]),
            st.sampled_from(["0.00", "12.34", "99.99"]),
            st.booleans(),
        ),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=4),
)
def test_every_read_equals_parsing_what_the_table_holds(
    steps: list[tuple[bytes, str, bool]], states_of_budget: int
) -> None:
    """Writes through the cache and writes behind its back (another worker, a changelog restore),
    in any order and under any budget: a read always gives the state the table's bytes say."""
    blob_size = len(_state("A-1").model_dump_json())
    cache = ParsedStates(budget_bytes=states_of_budget * blob_size * PARSED_BYTES_PER_JSON_BYTE)
    table: dict[bytes, bytes] = {}
    for key, balance, through_cache in steps:
        state = _state(key.decode(), balance)
        table[key] = cache.remember(key, state) if through_cache else state.model_dump_json().encode()
        for stored_key, blob in table.items():
            assert cache.parse(stored_key, blob) == AccountState.model_validate_json(blob)
