"""The CareCloud adapter: patients only, since CareCloud documents no billing API."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.adapters import AdapterError, adapt
from schemas.events import PatientUpdatedEvent

SAMPLES = Path(__file__).parents[1] / "fixtures" / "platforms" / "carecloud"
RECEIVED = datetime(2024, 4, 1, tzinfo=UTC)


def _adapt(name: str) -> list[Any]:
    return adapt("carecloud", (SAMPLES / name).read_bytes(), received_at=RECEIVED)


def test_patient_detail() -> None:
    source = json.loads((SAMPLES / "patient.json").read_text())
    (event,) = _adapt("patient.json")
    assert isinstance(event, PatientUpdatedEvent)
    assert event.data.patient_id == source["patient"]["id"]
    assert event.data.account_id == f"carecloud:{source['patient']['id']}"
    assert event.data.birth_date == date(1984, 6, 12)
    assert (event.data.mobile_phone, event.data.home_phone) == ("+15125550134", "+15125550199")
    assert event.data.address is not None and event.data.address.line == "12 Elm St, Apt 4"
    assert event.time == RECEIVED
    assert event.id == _adapt("patient.json")[0].id  # a digest of the record, stable on redelivery


def test_search_result() -> None:
    events = _adapt("patients_search.json")
    assert [e.data.name.family for e in events] == ["Rivera", "Rivera-Lopez"]


def test_anything_but_a_patient_is_refused_with_the_reason() -> None:
    with pytest.raises(AdapterError, match="not publicly documented"):
        _adapt("appointment.json")


def test_without_received_at_a_record_without_time_cannot_be_dated() -> None:
    with pytest.raises(AdapterError, match="no timestamp"):
        adapt("carecloud", (SAMPLES / "patient.json").read_bytes())
