"""The decision core: pure functions of (account state, input, policy) to (new state, outputs).

* `decide` folds one canonical event into the state and decides what to do about it;
* `daily_scan` runs the time-driven use cases once a day (the Faust timer, and ``billwise decide``
  offline when events move the clock past a day boundary: ask `scan_due` first);
* `rules.review.review_decision` handles a reviewer's decision on a held action.

The Faust worker and ``billwise decide`` call the same functions, so an offline run over the same events
gives the same actions as the stream. Decision time is the event's ``time`` (the scan's scheduled
time), never the wall clock. Scores are optional: without them the policy's documented prior applies.

>>> from schemas.events import parse_event
>>> from rules.policy import load_policy
>>> event = parse_event({"specversion": "1.0", "id": "evt-1", "source": "demo",
...     "type": "billing.statement.generated", "time": "2026-03-16T15:00:00Z",
...     "data": {"account_id": "ACC-1", "patient_id": "PT-1", "practice_id": "P-1", "statement_id": "S-1",
...              "statement_date": "2026-03-16", "due_date": "2026-04-15", "balance_due": "120.00"}})
>>> decision = decide(None, event, load_policy())
>>> [(o.topic, o.value.kind) for o in decision.outputs]  # no patient record yet: no permitted channel
[('actions', 'staff_task'), ('audit', 'suppressed'), ('audit', 'decision')]
>>> scan_due(decision.state.last_scan_day, event.time, load_policy())
False
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Unpack

from rules.candidate import Candidate
from rules.context import DecisionInputs
from rules.conversation import converse, on_dispute, on_payment, outreach_note
from rules.engine import DEFAULT_BACKEND, Backend, engines_for
from rules.facts import apply_event, recent_contacts
from rules.optout import classify
from rules.outputs import Decision, Output
from rules.policy import Policy
from rules.routes import flag_routes, reply_review_task
from rules.schedule import local_day, start_of_day
from rules.session import Session
from rules.state import MAX_SEEN_EVENTS, MAX_SLOTS, AccountState, bounded
from rules.usecases import SCAN_EVENT_TYPE, Cause, cause_of, propose, trigger_facts
from schemas.events import CanonicalEvent, CommunicationLogged, DisputeUpdated, PatientUpdated, PaymentPosted

__all__ = ["Decision", "Output", "daily_scan", "decide", "due_scans", "quiet_scans", "scan_day", "scan_due"]

RECHECK_EVENT_TYPES = frozenset(
    {
        "billing.patient.updated",
        "billing.dispute.updated",
        "billing.consent.updated",
        "billing.communication.logged",
        "billing.account.updated",
        "billing.payment.posted",
        "billing.statement.generated",
    }
)
"""Events that can make an open action non-compliant (flags, disputes, consent, opt-outs, payments,
closure)."""


def recheck_signature(state: AccountState | None) -> tuple[object, ...]:
    """Everything that can newly stop an open action: when none of it changed, open actions stand.

    Flags, disputes, consent and revocations, contact details (they decide channels and zones), the
    regime, the account's status and balance. Frequency counts are left out on purpose: a released
    action keeps its time, and a held one is re-scheduled at approval.
    """
    if state is None:
        return ()
    patient = state.patient
    return (
        patient.model_dump_json(exclude={"name", "birth_date", "language"}) if patient else None,
        bool(state.open_disputes),
        state.ever_disputed,
        state.sms_revoked_at,
        state.email_revoked_at,
        state.calls_revoked_at,
        tuple(state.blocked_numbers),
        state.account_status,
        state.balance,
        state.plan.status if state.plan else None,
        state.validation_notice_sent,
    )


def scan_day(now: datetime, policy: Policy) -> date:
    """The scan day ``now`` falls on (a day starts at midnight in the policy's scan zone)."""
    return local_day(now, policy.scan.timezone)


def scan_due(last_scan_day: date | None, now: datetime, policy: Policy) -> bool:
    """Whether an account last scanned on ``last_scan_day`` needs a scan at ``now``.

    >>> from datetime import UTC
    >>> from rules.policy import load_policy
    >>> policy = load_policy()                         # scan days start at midnight New York time
    >>> scan_due(date(2026, 3, 15), datetime(2026, 3, 16, 3, 59, tzinfo=UTC), policy)
    False
    >>> scan_due(date(2026, 3, 15), datetime(2026, 3, 16, 4, 0, tzinfo=UTC), policy)
    True
    """
    return last_scan_day is None or scan_day(now, policy) > last_scan_day


def due_scans(last_scan_day: date | None, now: datetime, policy: Policy) -> list[datetime]:
    """The scan instants an account missed up to ``now``: the start of each scan day after
    ``last_scan_day`` through ``now``'s day, at most ``policy.scan.max_catch_up_days`` of them (the
    latest). Offline runs call `daily_scan` at each, in order, before deciding an event at ``now``.

    >>> from datetime import UTC
    >>> from rules.policy import load_policy
    >>> now = datetime(2026, 3, 16, 15, tzinfo=UTC)
    >>> [t.isoformat() for t in due_scans(date(2026, 3, 14), now, load_policy())]
    ['2026-03-15T04:00:00+00:00', '2026-03-16T04:00:00+00:00']
    """
    today = scan_day(now, policy)
    if last_scan_day is None:
        return [start_of_day(today, policy.scan.timezone)]
    first = max(last_scan_day + timedelta(days=1), today - timedelta(days=policy.scan.max_catch_up_days - 1))
    return [
        start_of_day(first + timedelta(days=i), policy.scan.timezone) for i in range((today - first).days + 1)
    ]


def decide(
    state: AccountState | None,
    event: CanonicalEvent,
    policy: Policy,
    **given: Unpack[DecisionInputs],
) -> Decision:
    """Fold ``event`` into ``state`` and decide what to do about it.

    ``given``: the scores, a person's other contacts, drafts and channel ranking the caller has
    (`rules.context.DecisionInputs`). A redelivered event (same ``source`` and ``id``) changes nothing.
    """
    if state is not None and state.has_seen(event.dedup_key):
        return Decision(state=state, outputs=(), duplicate=True)
    before = recheck_signature(state)
    data = event.data
    now = event.time
    if state is None:
        # A new account's first scan is the next scan day; its first event is decided right away.
        state = AccountState.new(data.account_id, data.patient_id, data.practice_id).model_copy(
            update={"last_scan_day": scan_day(now, policy)}
        )
    state = apply_event(state, data).model_copy(
        update={
            "seen_events": bounded([*state.seen_events, event.dedup_key], MAX_SEEN_EVENTS),
            "last_event_at": now,
        }
    )
    cause = cause_of(event.type, event.id, data)
    session = Session(state, policy, now, cause, **given)
    if isinstance(data, CommunicationLogged):
        _read_reply(session, data)
    if isinstance(data, DisputeUpdated):
        on_dispute(session, data)
    if event.type in RECHECK_EVENT_TYPES and recheck_signature(session.state) != before:
        session.recheck_open()
    # Conversations after the re-check: a reply is gated on the state as it now is, and is not
    # itself re-checked by the event that asked for it.
    if isinstance(data, CommunicationLogged):
        converse(session, data)
        outreach_note(session, data)
    if isinstance(data, PaymentPosted):
        on_payment(session, data)
    if isinstance(data, PatientUpdated):
        for task in flag_routes(session.state):
            session.consider(task)
    for candidate in propose(cause, session.ctx):
        session.consider(candidate)
    return session.finish()


def _read_reply(session: Session, data: CommunicationLogged) -> None:
    """An inbound reply with opt-out words revokes that channel at once; an unclear one goes to staff."""
    policy = session.ctx.policy
    if data.direction != "inbound" or data.channel not in policy.opt_out.channels:
        return
    reading = classify(data.text, policy)
    if reading == "revoke":
        field = "sms_revoked_at" if data.channel == "sms" else "email_revoked_at"
        session.update(**{field: data.at})
        session.audit("decision", gate="G-OPT-OUT", effect="consent_revoked", channel=data.channel)
        session.note(None, None, f"{data.channel}_revoked", ["G-OPT-OUT"])
    elif reading == "ambiguous":
        session.consider(reply_review_task(data.text or "", data.channel))


def daily_scan(
    state: AccountState,
    policy: Policy,
    now: datetime,
    **given: Unpack[DecisionInputs],
) -> Decision:
    """The daily scan of one account at ``now`` (the scheduler's time): aging use cases, expiries;
    ``given`` as for `decide`.

    Idempotent per scan day: a second call on the same day changes nothing (``duplicate``).
    """
    day = scan_day(now, policy)
    if state.last_scan_day is not None and state.last_scan_day >= day:
        return Decision(state=state, outputs=(), duplicate=True)
    cause = _scan_cause(day)
    session = Session(state, policy, now, cause, **given)
    session.expire_held()
    candidates = propose(cause, session.ctx)
    if session.state is state and _only_open_offers(state, candidates, now):
        # Most scans re-propose offers held for review, unchanged: `Session.consider` would drop every
        # one, so the day changes what a quiet day changes, without the Session's bookkeeping.
        return Decision(state=_scanned(state, day, now), outputs=())
    for candidate in candidates:
        session.consider(candidate)
    session.update(last_scan_day=day)
    return session.finish()


def _only_open_offers(state: AccountState, candidates: Sequence[Candidate], now: datetime) -> bool:
    """Whether every candidate is already offered, unchanged, by an open action of the account."""
    if len(state.slots) > MAX_SLOTS:
        return False  # `Session.finish` would drop closed slots
    return all((record := state.slots.get(c.slot)) is not None and record.offers(c, now) for c in candidates)


def _scanned(state: AccountState, day: date, moment: datetime) -> AccountState:
    """``state`` after a scan on ``day`` (at ``moment``) that did nothing: the scan day moves and the
    contacts that aged out of every frequency window go."""
    return state.model_copy(
        update={"last_scan_day": day, "contacts": recent_contacts(state.contacts, moment)}
    )


def quiet_scans(
    state: AccountState, policy: Policy, moments: Sequence[datetime], backend: Backend = DEFAULT_BACKEND
) -> tuple[int, AccountState]:
    """How many of the daily scans at ``moments`` (in order, as `due_scans` gives them), from the
    first, can do nothing whatever the models would say; and the account's state after them.

    Most scans are quiet: no held action expires and no use case fires for any propensity the model
    could give (`rules.engine.RulesEngine.may_fire`), so no candidate, audit record or action can come
    of them, and all `daily_scan` would change is the scan day and the contacts that have aged out of
    every frequency window. A run of quiet days changes the state once, as its last day would. Asking
    this first lets the worker skip scoring the account (the larger part of a scan's cost) and the
    `Session` of each quiet day; the first scan that is not quiet runs `daily_scan`, with the scores.
    Both give the same decisions and states (tested over simulated practices).

    >>> from datetime import UTC
    >>> from rules.policy import load_policy
    >>> state = AccountState.new("A", "P", "X").model_copy(update={"last_scan_day": date(2026, 3, 15)})
    >>> moments = due_scans(state.last_scan_day, datetime(2026, 3, 18, 5, tzinfo=UTC), load_policy())
    >>> quiet, after = quiet_scans(state, load_policy(), moments)
    >>> quiet, after.last_scan_day
    (3, datetime.date(2026, 3, 18))
    """
    if len(state.slots) > MAX_SLOTS:
        return 0, state  # `daily_scan` would drop closed slots
    engine = engines_for(policy, backend).usecases
    expiry = min((held.action.expires_at for held in state.held.values()), default=None)
    quiet: tuple[date, datetime] | None = None
    count = 0
    for moment in moments:
        day = scan_day(moment, policy)
        if (state.last_scan_day is not None and state.last_scan_day >= day) or (
            expiry is not None and expiry <= moment
        ):
            break  # a repeated scan (`daily_scan` says so) or a held action to expire
        facts = trigger_facts(_scan_cause(day), state, day, policy.scores.prior_propensity)
        if engine.may_fire(facts, "propensity"):
            break
        count, quiet = count + 1, (day, moment)
    if quiet is None:
        return 0, state
    day, moment = quiet
    return count, _scanned(state, day, moment)


def _scan_cause(day: date) -> Cause:
    return Cause("scan", f"scan-{day.isoformat()}", SCAN_EVENT_TYPE)
