"""Where the patient may be: the candidate time zones that quiet hours must respect, all of them.

Reg F evaluates time-of-day rules at the consumer's location, and when the data disagree the collector
may only contact at times convenient in every possible location (comment 6(b)(1)(i)-2, F-02). The
candidates come from the sources the policy lists: the stated IANA zone, every zone of the address
state (`us`), and the zones of each phone number's area code (`phonenumbers`). Non-geographic numbers
(toll-free, or an area code spanning more zones than the policy allows) say nothing about location.

>>> from rules.policy import load_policy
>>> from schemas.events import PatientUpdated
>>> patient = PatientUpdated(account_id="A", patient_id="P", practice_id="X", mobile_phone="+12125550123",
...                          address={"state": "CA"})
>>> candidate_zones(patient, load_policy())
('America/Los_Angeles', 'America/New_York')
>>> reference_zone(patient, load_policy())
'America/Los_Angeles'
>>> candidate_zones(None, load_policy())
('America/New_York',)
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
import us
from phonenumbers import timezone as phone_zones

from rules.policy import Policy
from schemas.events import PatientUpdated

_UNKNOWN = "Etc/Unknown"


@lru_cache(maxsize=64)
def state_zones(state_code: str) -> tuple[str, ...]:
    """Every IANA zone of a US state or territory (empty when unknown)."""
    state = us.states.lookup(state_code)
    return tuple(state.time_zones) if state is not None and state.time_zones else ()


@lru_cache(maxsize=4096)
def phone_number_zones(number: str, max_zones: int) -> tuple[str, ...]:
    """The zones of a number's area code, or nothing when the number does not say where its owner is."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    if not phonenumbers.is_number_geographical(parsed):
        return ()
    zones = tuple(z for z in phone_zones.time_zones_for_number(parsed) if z != _UNKNOWN)
    return zones if len(zones) <= max_zones else ()


def candidate_zones(patient: PatientUpdated | None, policy: Policy) -> tuple[str, ...]:
    """Every zone the patient may be in, in the order of the policy's sources, without repeats."""
    quiet = policy.quiet_hours
    if patient is None:
        return (quiet.default_timezone,)
    return _zones(
        quiet.zone_sources,
        quiet.max_area_code_zones,
        quiet.default_timezone,
        patient.timezone,
        patient.address.state if patient.address else None,
        patient.mobile_phone,
        patient.home_phone,
    )


@lru_cache(maxsize=4096)
def _zones(
    sources: tuple[str, ...],
    max_zones: int,
    default: str,
    stated: str | None,
    address_state: str | None,
    mobile_phone: str | None,
    home_phone: str | None,
) -> tuple[str, ...]:
    # Keyed by the only patient and policy fields the zones depend on: every decision asks (twice,
    # with the reference zone), and a patient's details rarely change between two of them.
    found: list[str] = []
    for source in sources:
        if source == "stated" and stated:
            found.append(stated)
        elif source == "address_state" and address_state:
            found.extend(state_zones(address_state))
        elif source == "mobile_phone" and mobile_phone:
            found.extend(phone_number_zones(mobile_phone, max_zones))
        elif source == "home_phone" and home_phone:
            found.extend(phone_number_zones(home_phone, max_zones))
    return tuple(dict.fromkeys(found)) or (default,)


def reference_zone(patient: PatientUpdated | None, policy: Policy) -> str:
    """The zone whose calendar days count the frequency windows: the first candidate (the stated zone
    when there is one, else the address state's first zone)."""
    return candidate_zones(patient, policy)[0]
