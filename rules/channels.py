"""Consent and channel choice: the preferred channel if permitted, else the next permitted one.

Permissions (POLICY.md section 3, consent gate): SMS needs ``consent.sms`` and a mobile number and no
opt-out since; email needs an address and ``consent.email`` not false and no opt-out since; the portal
needs ``consent.portal``; a letter needs a mailing address the patient has not asked to keep
confidential; a staff call needs a number the patient has not asked us to stop calling.

>>> from rules.policy import load_policy
>>> from rules.state import AccountState
>>> from schemas.events import PatientUpdated
>>> state = AccountState.new("A", "P", "X").model_copy(update={"patient": PatientUpdated(
...     account_id="A", patient_id="P", practice_id="X", email="p@example.org", mobile_phone="+12125550123",
...     preferred_channel="sms", consent={"sms": False, "portal": True})})
>>> choose_channel(state, (), load_policy())
('email', 'fallback')
>>> choose_channel(state, ("portal", "sms"), load_policy())
('portal', 'fallback')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rules.policy import Policy
from rules.state import AccountState

ChannelStatus = Literal["preferred", "fallback", "none"]


def callable_numbers(state: AccountState) -> list[str]:
    patient = state.patient
    if patient is None or state.calls_revoked_at is not None:
        return []
    numbers = [patient.mobile_phone, patient.home_phone]
    return [n for n in numbers if n and n not in state.blocked_numbers]


def permitted(state: AccountState, channel: str) -> bool:
    """Whether ``channel`` may reach the patient now."""
    patient = state.patient
    if patient is None:
        return False
    consent = patient.consent
    if channel == "sms":
        return bool(patient.mobile_phone and consent.sms is True and state.sms_revoked_at is None)
    if channel == "email":
        return bool(patient.email and consent.email is not False and state.email_revoked_at is None)
    if channel == "portal":
        return consent.portal is True
    if channel == "letter":
        return bool(patient.address and patient.address.line and not patient.flags.confidential_address)
    if channel == "phone":
        return bool(callable_numbers(state))
    return False


def choose_channel(
    state: AccountState, allowed: Sequence[str], policy: Policy
) -> tuple[str | None, ChannelStatus]:
    """The channel to use among ``allowed`` (empty: any), and whether it is the first choice."""
    preferred = state.patient.preferred_channel if state.patient else None
    order: list[str] = [c for c in dict.fromkeys([preferred, *policy.channels.fallback_order]) if c]
    if allowed:
        order = [c for c in order if c in allowed] + [c for c in allowed if c not in order]
    for index, channel in enumerate(order):
        if permitted(state, channel):
            return channel, "preferred" if index == 0 else "fallback"
    return None, "none"
