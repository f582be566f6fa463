"""Fuzzed payloads never crash an adapter: they map to contract-valid events or raise `AdapterError`.

`adapt` has a last-resort net that turns any stray exception into an `AdapterError` ("could not be
mapped"); these tests also require that the net is never what catches a fuzzed input, so every
rejection is a diagnosis by the adapter itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.adapters import PLATFORMS, AdapterError, adapt
from schemas.events import EVENT_TYPES

FIXTURES = Path(__file__).parents[1] / "fixtures"
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)
SAFETY_NET = "could not be mapped"

SAMPLES: dict[str, list[bytes]] = {
    "drchrono": [p.read_bytes() for p in sorted((FIXTURES / "platforms" / "drchrono").glob("*.json"))],
    "tebra": [p.read_bytes() for p in sorted((FIXTURES / "platforms" / "tebra").glob("*.xml"))],
    "advancedmd": [p.read_bytes() for p in sorted((FIXTURES / "platforms" / "advancedmd").glob("*.json"))],
    "carecloud": [p.read_bytes() for p in sorted((FIXTURES / "platforms" / "carecloud").glob("*.json"))],
    "fhir": [p.read_bytes() for p in sorted((FIXTURES / "fhir-r4").glob("*.json"))]
    + [p.read_bytes() for p in sorted((FIXTURES / "platforms" / "fhir").glob("*.json"))],
    "x12-835": [
        (FIXTURES / "x12-835" / "blue_cross_nc_sample.txt").read_bytes(),
        (FIXTURES / "platforms" / "x12-835" / "aetna_multi_claim.835").read_bytes(),
    ],
}
JSON_PLATFORMS = ("drchrono", "advancedmd", "carecloud", "fhir")
FAST = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow])


def check(platform: str, payload: bytes) -> None:
    """Either contract-valid events or an `AdapterError` raised by the adapter itself."""
    try:
        events = adapt(platform, payload, received_at=RECEIVED)
    except AdapterError as error:
        assert SAFETY_NET not in error.message, error.message
        assert error.message
        return
    for event in events:
        assert event.type in EVENT_TYPES
        assert type(event) is EVENT_TYPES[event.type]


json_leaves = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.decimals(allow_nan=False, places=3)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def _dump(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


@FAST
@given(platform=st.sampled_from(PLATFORMS), payload=st.binary(max_size=300))
def test_random_bytes(platform: str, payload: bytes) -> None:
    check(platform, payload)


@FAST
@given(platform=st.sampled_from(JSON_PLATFORMS), value=json_values)
def test_random_json(platform: str, value: Any) -> None:
    check(platform, _dump(value))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += _paths(item, (*prefix, index))
    return paths


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = _replace(document[head], tuple(rest), new)
    return copy


@FAST
@given(data=st.data())
def test_mutated_real_json_payloads(data: st.DataObject) -> None:
    platform = data.draw(st.sampled_from(JSON_PLATFORMS))
    document = json.loads(data.draw(st.sampled_from(SAMPLES[platform])))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        document = _replace(document, path, data.draw(json_values))
    check(platform, _dump(document))


def _byte_mutation(payload: bytes, data: st.DataObject) -> bytes:
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, max(len(payload) - 1, 0)))
        length = data.draw(st.integers(0, 12))
        insert = data.draw(
            st.binary(max_size=8) | st.sampled_from([b"*", b"~", b":", b"<", b">", b"-", b".", b"9"])
        )
        payload = payload[:start] + insert + payload[start + length :]
    return payload


@FAST
@given(data=st.data())
def test_mutated_real_tebra_xml(data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(SAMPLES["tebra"]))
    check("tebra", _byte_mutation(payload, data))


@SLOW
@given(data=st.data())
def test_mutated_real_835(data: st.DataObject) -> None:
    payload = data.draw(st.sampled_from(SAMPLES["x12-835"]))
    check("x12-835", _byte_mutation(payload, data))


@SLOW
@given(data=st.data())
def test_mutated_835_elements(data: st.DataObject) -> None:
    """Element-level mutation: replace one element of one segment with fuzz text."""
    text = data.draw(st.sampled_from(SAMPLES["x12-835"])).decode()
    segments = text.split("~")
    index = data.draw(st.integers(0, len(segments) - 1))
    elements = segments[index].split("*")
    position = data.draw(st.integers(0, len(elements) - 1))
    elements[position] = data.draw(st.text(alphabet="0123456789.-ABCXYZ:^ ", max_size=10))
    segments[index] = "*".join(elements)
    check("x12-835", "~".join(segments).encode())


def test_every_sample_maps_cleanly() -> None:
    for platform, payloads in SAMPLES.items():
        for payload in payloads:
            check(platform, payload)
