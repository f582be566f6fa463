"""Folding events into account state: the facts half of the decision core.

`apply_event` is pure: it returns a new `AccountState` and never mutates its input, so the Faust
worker and the offline CLI fold the same events into the same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import singledispatch
from typing import Any

from rules.state import (
    CONTACT_MEMORY_DAYS,
    MAX_BLOCKED_NUMBERS,
    MAX_CLAIMS,
    MAX_CONTACTS,
    MAX_PAYMENTS,
    AccountState,
    ClaimFact,
    ContactFact,
    PaymentFact,
    PlanFact,
    StatementFact,
    bounded,
)
from schemas.events import (
    AccountUpdated,
    AssistanceUpdated,
    ChargePosted,
    ClaimAdjudicated,
    CommunicationLogged,
    ConsentUpdated,
    DisputeUpdated,
    EventData,
    PatientUpdated,
    PaymentPlanUpdated,
    PaymentPosted,
    StatementGenerated,
)


def apply_event(state: AccountState, data: EventData) -> AccountState:
    """The state after one event's data: a new object; ``state`` is left as it was."""
    update = _changes(data, state)
    return state.model_copy(update=update) if update else state


@singledispatch
def _changes(data: EventData, state: AccountState) -> dict[str, Any]:
    raise TypeError(f"no fact folding for {type(data).__name__}")


@_changes.register
def _(data: PatientUpdated, state: AccountState) -> dict[str, Any]:
    return {"patient": data, "patient_id": data.patient_id, "practice_id": data.practice_id}


@_changes.register
def _(data: ChargePosted, state: AccountState) -> dict[str, Any]:
    # Charges change the balance only through the platform's own account and statement events; a
    # charge alone does not say how much the patient (rather than insurance) owes.
    oldest = state.oldest_unpaid_service_date
    return {"oldest_unpaid_service_date": min(oldest, data.service_date) if oldest else data.service_date}


@_changes.register
def _(data: ClaimAdjudicated, state: AccountState) -> dict[str, Any]:
    fact = ClaimFact(
        claim_id=data.claim_id,
        payer=data.payer,
        service_date=data.service_date,
        billed=data.billed,
        allowed=data.allowed,
        insurance_paid=data.insurance_paid,
        patient_responsibility=data.patient_responsibility,
        deductible=data.breakdown.deductible,
        coinsurance=data.breakdown.coinsurance,
        copay=data.breakdown.copay,
        noncovered=data.breakdown.noncovered,
        status=data.status,
    )
    claims = [claim for claim in state.claims if claim.claim_id != data.claim_id] + [fact]
    return {"claims": bounded(claims, MAX_CLAIMS)}


@_changes.register
def _(data: StatementGenerated, state: AccountState) -> dict[str, Any]:
    statement = StatementFact(
        statement_id=data.statement_id,
        statement_date=data.statement_date,
        due_date=data.due_date,
        balance_due=data.balance_due,
        insurance_pending=data.insurance_pending,
    )
    return {
        "last_statement": statement,
        "balance": data.balance_due,
        "insurance_pending": data.insurance_pending,
        "first_statement_date": state.first_statement_date or data.statement_date,
    }


@_changes.register
def _(data: PaymentPosted, state: AccountState) -> dict[str, Any]:
    if any(payment.payment_id == data.payment_id for payment in state.payments):
        return {}
    payment = PaymentFact(
        payment_id=data.payment_id,
        amount=data.amount,
        at=data.posted_at,
        expected_amount=data.expected_amount,
    )
    return {
        "payments": bounded([*state.payments, payment], MAX_PAYMENTS),
        "balance": state.balance - data.amount,
    }


@_changes.register
def _(data: PaymentPlanUpdated, state: AccountState) -> dict[str, Any]:
    plan = PlanFact(
        plan_id=data.plan_id,
        status=data.status,
        monthly_amount=data.monthly_amount,
        term_months=data.term_months,
        next_due_date=data.next_due_date,
        missed_payments=data.missed_payments,
        balance_remaining=data.balance_remaining,
    )
    return {"plan": plan}


@_changes.register
def _(data: AccountUpdated, state: AccountState) -> dict[str, Any]:
    return {
        "balance": data.balance,
        # An update that leaves the date out keeps the known one while money is still owed.
        "oldest_unpaid_service_date": data.oldest_unpaid_service_date
        if data.oldest_unpaid_service_date is not None or data.balance <= 0
        else state.oldest_unpaid_service_date,
        "account_status": data.status,
        "self_pay": data.self_pay,
        "first_statement_date": data.first_statement_date or state.first_statement_date,
        "nonprofit_hospital": data.nonprofit_hospital,
    }


@_changes.register
def _(data: DisputeUpdated, state: AccountState) -> dict[str, Any]:
    others = [dispute for dispute in state.open_disputes if dispute != data.dispute_id]
    if data.status == "opened":
        return {"open_disputes": [*others, data.dispute_id], "ever_disputed": True}
    return {"open_disputes": others}


@_changes.register
def _(data: AssistanceUpdated, state: AccountState) -> dict[str, Any]:
    return {
        "assistance_status": data.status,
        "household_size": data.household_size or state.household_size,
        "annual_income": data.annual_income if data.annual_income is not None else state.annual_income,
    }


@_changes.register
def _(data: CommunicationLogged, state: AccountState) -> dict[str, Any]:
    # Outbound contacts count towards the frequency windows; an inbound conversation starts the call
    # pause without counting as a call (Reg F 1006.14(b)(2)(ii)). Other inbound words (opt-out replies)
    # are read by `rules.optout`, which needs the policy's keywords.
    if data.direction != "outbound" and data.outcome != "conversation":
        return {}
    contact = ContactFact(
        at=data.at,
        channel=data.channel,
        direction=data.direction,
        outcome=data.outcome,
        action_id=data.action_id,
    )
    # The sender's log replaces the contact the engine planned for the same action.
    kept = [c for c in state.contacts if not (c.planned and data.action_id and c.action_id == data.action_id)]
    return {"contacts": recent_contacts([*kept, contact], data.at)}


@_changes.register
def _(data: ConsentUpdated, state: AccountState) -> dict[str, Any]:
    channels = ("email", "sms", "phone") if data.channel == "all" else (data.channel,)
    update: dict[str, Any] = {}
    if state.patient is not None:
        names = {"phone": "autodialed_calls"}
        consent = state.patient.consent.model_copy(update={names.get(c, c): data.granted for c in channels})
        update["patient"] = state.patient.model_copy(update={"consent": consent})
    for channel in channels:
        if channel == "phone" and data.address:
            # "Stop calling my work phone" blocks that number only (Reg F 1006.14(h)).
            others = [n for n in state.blocked_numbers if n != data.address]
            blocked = others if data.granted else [*others, data.address]
            update["blocked_numbers"] = bounded(blocked, MAX_BLOCKED_NUMBERS)
            continue
        field = {"sms": "sms_revoked_at", "email": "email_revoked_at", "phone": "calls_revoked_at"}[channel]
        # SMS consent is revoked for every number at once (the engine's revoke-all default, T-08).
        update[field] = None if data.granted else data.at
    return update


def recent_contacts(contacts: list[ContactFact], now: datetime) -> list[ContactFact]:
    """Contacts young enough to matter for a frequency window, newest last, bounded."""
    horizon = now - timedelta(days=CONTACT_MEMORY_DAYS)
    return bounded([c for c in contacts if c.at >= horizon], MAX_CONTACTS)
