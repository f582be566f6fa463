"""Account states kept parsed between batches, so a worker does not parse the same JSON again.

Parsing a stored state (6-26 KB of JSON) was the largest part of reading the account table: about 300
µs of a 470 µs read, measured for issue 8 (`docs/performance.md`). The account an event is for was most
often read or written a few batches before, so the worker keeps the states it parsed or wrote lately.

A state is handed out only while the table still holds the very bytes it was parsed from: a state
restored from the changelog, or written by another worker before a rebalance, is parsed afresh, and
nothing needs invalidating. States are never changed in place (the decision core copies them, and a
batch's two passes already share the states they start from), so one parsed state can be handed out
again.
"""

from __future__ import annotations

from collections import OrderedDict

from rules.state import AccountState

PARSED_BYTES_PER_JSON_BYTE = 6
"""What a state costs in memory per byte of its JSON: its parsed objects (measured 5.4 bytes per byte
over simulated accounts) and the JSON kept to compare with."""


class ParsedStates:
    """Account key → the state last parsed or written for it, with its JSON, least recently used first.

    ``budget_bytes`` bounds the memory it holds (estimated from the JSON's size); 0 keeps nothing.

    >>> cache = ParsedStates(budget_bytes=1_000_000)
    >>> state = AccountState.new("A-1", "P-1", "X")
    >>> blob = cache.remember(b"A-1", state)
    >>> cache.parse(b"A-1", blob) is state                # the table holds what was written
    True
    >>> cache.parse(b"A-1", blob.replace(b"X", b"Y")) is state   # it holds something else
    False
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._held_bytes = 0
        self._parsed: OrderedDict[bytes, tuple[bytes, AccountState]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._parsed)

    def __contains__(self, key: bytes) -> bool:
        return key in self._parsed

    def parse(self, key: bytes, blob: bytes) -> AccountState:
        """The state stored as ``blob`` under ``key``."""
        known = self._parsed.get(key)
        if known is not None and known[0] == blob:
            self._parsed.move_to_end(key)
            return known[1]
        state = AccountState.model_validate_json(blob)
        self._keep(key, blob, state)
        return state

    def remember(self, key: bytes, state: AccountState) -> bytes:
        """``state`` as the bytes to store under ``key``; it stays parsed for the next read."""
        blob = state.model_dump_json().encode()
        self._keep(key, blob, state)
        return blob

    def _keep(self, key: bytes, blob: bytes, state: AccountState) -> None:
        old = self._parsed.pop(key, None)
        if old is not None:
            self._held_bytes -= len(old[0]) * PARSED_BYTES_PER_JSON_BYTE
        self._parsed[key] = (blob, state)
        self._held_bytes += len(blob) * PARSED_BYTES_PER_JSON_BYTE
        while self._held_bytes > self.budget_bytes and self._parsed:
            _, (dropped, _) = self._parsed.popitem(last=False)
            self._held_bytes -= len(dropped) * PARSED_BYTES_PER_JSON_BYTE
