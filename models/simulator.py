"""A synthetic medical practice whose patients behave the way public figures say patients do.

`Practice` emits canonical events (CloudEvents dicts that `schemas.events.parse_event` accepts) for a
book of patients over a number of days: registrations, charges, claim adjudications, monthly statements,
their delivery, payments, self-service plans and their defaults, disputes, inbound calls and moves to
collections. Every patient has hidden traits the engine never sees: a propensity to pay, a lump-sum and
a monthly capacity, the channel they really respond to. `respond` says what a patient does when the
engine (or a fixed-cadence baseline) acts, and `oracle_propensity` exposes the hidden probability of
paying, so that a model can be scored against the best possible one.

Calibration (``../shared/reference/peer-anchors.md``):

- patient responsibility per claim: office visits (median ~$180 allowed) and a tail of procedures
  (median ~$1,800), deductibles heavier early in the year, so that most statement balances are under
  $500 (TransUnion: 63% of bills <= $500; Phreesia: average balance $169);
- a statement is paid in its cycle with probability ~0.3 on average (MGMA: 3.3 statements before
  payment), lower for larger balances (McKinsey: 90% / 74% / 62% willing and able below $500, $1k,
  above) and older debt (collectability 90% in the first 90 days, 50% after, 20% at 180 days); balances
  above a patient's lump-sum capacity (median ~$300, Patientco's $400 tipping point) are paid in part;
- A/R ageing of the opening book (MGMA: 65.5% 0-30 days, 13.5% 31-60, 6.1% 61-90, 11.5% 91-120);
- plans: affordable monthly amount median ~$97 (PayZen), self-enrolment rising with balance (PYMNTS)
  and with affordability, about a fifth of plans defaulting (Munson ~18%, PayZen/HFMA 20-30%);
- ~13% Spanish speakers (more in CA, TX, FL, NM), consent and channel availability per patient, rare
  deceased / bankruptcy / attorney / cease flags, disputes from a few percent of accounts a year,
  placement with an agency at 120+ days without payment (MGMA: most practices place at 91-120 days);
  over two years about a third of patient responsibility is collected (Kodiak: 34.4%; Cedar: ~40%).

What the engine can observe of the hidden propensity is behaviour, as in a real practice: payments
(including copays at check-in and, for patients known at go-live, the last year of payments the
practice system syncs, dated in the past), e-statement opens, portal enrolment. How strongly the hidden
propensity drives each of them (`Z_WEIGHT` and friends) is an assumption: no public figure gives it.

Everything is deterministic for a seed. Each patient draws from its own random stream, and `respond`
draws from a stream seeded by the action id, so a patient's behaviour does not depend on when other
patients' actions were answered (the engine and a baseline policy see common random numbers).

Generation is lazy: a heap of per-patient next tasks, no event list in memory; ~6 KB per patient (half
of it the patient's own random generator). ~60,000 events/s of CPU on a 2-core VM.

>>> from schemas.events import parse_event
>>> practice = Practice(seed=7, patients=30, days=60)
>>> events = list(practice.events())
>>> events[0]["type"], all(parse_event(e) for e in events)
('billing.patient.updated', True)
>>> [e["time"] for e in events] == sorted(e["time"] for e in events)
True
>>> 0.0 <= practice.oracle_propensity(events[0]["data"]["account_id"]) <= 1.0
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["DEFAULT_START", "FixedCadence", "Practice"]

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A Monday early in the year, when deductibles make patient balances largest."""

DAY = 86_400
HOUR = 3_600
STATEMENT_CYCLE_DAYS = 30
COLLECTIONS_AFTER_DAYS = 120
"""Days after the first statement from which an unpaying account may be placed with an agency."""
PLAN_TERMS = (3, 6, 12, 24)
"""Self-service plan terms in months (PayZen/HFMA: 58% of providers cap plans at 24 months)."""
MAX_DEFAULT_MISSES = 3
Z_WEIGHT = 1.1
"""Log-odds weight of the hidden propensity in every payment decision."""

# (state, IANA zone, standard UTC offset in hours, weight, share of Spanish speakers, area code)
_STATES: tuple[tuple[str, str, int, float, float, str], ...] = (
    ("CA", "America/Los_Angeles", -8, 12.0, 0.28, "213"),
    ("TX", "America/Chicago", -6, 9.0, 0.29, "512"),
    ("FL", "America/New_York", -5, 7.0, 0.21, "305"),
    ("NY", "America/New_York", -5, 6.0, 0.14, "212"),
    ("PA", "America/New_York", -5, 4.0, 0.05, "215"),
    ("IL", "America/Chicago", -6, 4.0, 0.13, "312"),
    ("OH", "America/New_York", -5, 3.5, 0.03, "614"),
    ("GA", "America/New_York", -5, 3.3, 0.07, "404"),
    ("NC", "America/New_York", -5, 3.2, 0.07, "919"),
    ("MI", "America/Detroit", -5, 3.0, 0.03, "313"),
    ("WA", "America/Los_Angeles", -8, 2.3, 0.08, "206"),
    ("AZ", "America/Phoenix", -7, 2.2, 0.20, "602"),
    ("MA", "America/New_York", -5, 2.1, 0.09, "617"),
    ("CO", "America/Denver", -7, 1.8, 0.11, "303"),
    ("NM", "America/Denver", -7, 0.6, 0.25, "505"),
    ("HI", "Pacific/Honolulu", -10, 0.4, 0.02, "808"),
    ("AK", "America/Anchorage", -9, 0.2, 0.03, "907"),
)
_STATE_WEIGHTS = [s[3] for s in _STATES]
_GIVEN = ("James", "Mary", "Robert", "Linda", "Michael", "Aiko", "David", "Sarah", "Wei", "Emily", "Kwame")
_FAMILY = ("Smith", "Johnson", "Brown", "Nguyen", "Miller", "Tanaka", "Davis", "Wilson", "Patel", "Okafor")
_GIVEN_ES = ("María", "José", "Guadalupe", "Juan", "Rosa", "Luis", "Carmen", "Miguel", "Ana", "Jorge")
_FAMILY_ES = ("García", "Martínez", "Hernández", "López", "González", "Rodríguez", "Pérez", "Sánchez")
_SERVICES = (
    "Office visit",
    "Laboratory tests",
    "Imaging",
    "Preventive visit",
    "Procedure",
    "Urgent care visit",
)
_PAYERS = ("Blue Cross", "Aetna", "UnitedHealthcare", "Cigna", "Humana")
# Opening-book ageing (MGMA internal-medicine A/R buckets), as service-date age ranges in days.
_AGEING = ((15, 30, 65.5), (31, 60, 13.5), (61, 90, 6.1), (91, 120, 11.5), (121, 240, 3.4))

# Heap task kinds.
_JOIN, _ENCOUNTER, _CLAIM, _STATEMENT, _PAY, _PLAN_ENROLL, _PLAN_DUE = range(7)
_DISPUTE_OPEN, _DISPUTE_RESOLVE, _EMIT, _EFFECT = range(7, 11)


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v)) if v > -60 else 0.0


def _randint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` at a third of the cost (it sits on the hot path of every task)."""
    return low + int(rng.random() * (high - low + 1))


def _money(cents: int) -> str:
    """Integer cents as the contract's two-place text (money never passes through float here)."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class _Plan:
    __slots__ = ("missed", "monthly", "next_due", "plan_id", "q", "remaining", "term")

    def __init__(
        self, plan_id: str, monthly: int, term: int, remaining: int, next_due: int, q: float
    ) -> None:
        self.plan_id = plan_id
        self.monthly = monthly
        self.term = term
        self.remaining = remaining
        self.next_due = next_due  # sim seconds
        self.missed = 0
        self.q = q  # probability that an installment is paid (hidden)


class _Patient:
    """One patient-guarantor and their account: hidden traits plus what the practice system knows."""

    __slots__ = (
        "acct",
        "affinity",
        "afford",
        "age",
        "consent",
        "contacts",
        "credit",
        "cycle_oracle",
        "cycle_t",
        "dispute",
        "email",
        "family",
        "first_stmt",
        "flags",
        "given",
        "household",
        "idx",
        "income",
        "items",
        "joined",
        "lang",
        "last_pay",
        "lump",
        "mobile",
        "n",
        "n_stmt",
        "offset",
        "paperless",
        "pay_pending",
        "payer",
        "pending",
        "pid",
        "plan",
        "plans",
        "preferred",
        "rng",
        "self_pay",
        "sms_ok",
        "state",
        "status",
        "stmt_due",
        "tz",
        "tz_known",
        "z",
    )

    def __init__(self, idx: int, acct: str, rng: random.Random) -> None:
        self.idx = idx
        self.acct = acct
        self.pid = "PT-" + acct[4:]
        self.rng = rng
        r = rng.random
        self.z = rng.gauss(0.0, 1.0)  # hidden propensity to pay
        # Capacity correlates with propensity but is not the same thing.
        self.lump = math.exp(math.log(300.0) + 0.45 * self.z + rng.gauss(0.0, 0.7))
        self.afford = self.lump * 0.32  # monthly; median ~$97 (PayZen)
        self.household = 1 + min(5, int(rng.expovariate(0.7)))
        self.income = math.exp(math.log(55_000.0) + 0.35 * self.z + rng.gauss(0.0, 0.6))
        st = rng.choices(_STATES, weights=_STATE_WEIGHTS)[0]
        self.state, self.tz, self.offset = st[0], st[1], st[2]
        self.tz_known = r() < 0.85
        self.lang = "es" if r() < st[4] * 0.85 else "en"
        age = rng.uniform(0, 17.9) if r() < 0.18 else rng.uniform(18, 90)
        self.age = age
        names_g, names_f = (_GIVEN_ES, _FAMILY_ES) if self.lang == "es" else (_GIVEN, _FAMILY)
        self.given, self.family = rng.choice(names_g), rng.choice(names_f)
        self.email = r() < 0.82 - 0.004 * max(0.0, age - 60)
        self.mobile = f"+1{st[5]}555{rng.randrange(10_000):04d}" if r() < 0.88 else None
        cons: dict[str, bool | None] = {"email": None, "sms": None, "autodialed_calls": None, "portal": None}
        if self.email and r() < 0.75:
            cons["email"] = True
        if self.mobile:
            u = r()
            cons["sms"] = True if u < 0.55 else (False if u < 0.60 else None)
        # Engaged patients (higher propensity) enrol in the portal and e-statements more often.
        cons["portal"] = True if r() < _sig(-0.8 + 1.1 * self.z) else None
        cons["autodialed_calls"] = True if r() < 0.30 else None
        self.consent = cons
        self.sms_ok = bool(cons["sms"])
        self.paperless = bool(self.email and cons["email"] and r() < _sig(0.1 + 0.9 * self.z))
        options = [("sms", 35.0), ("email", 35.0), ("letter", 15.0), ("portal", 5.0), (None, 10.0)]
        self.preferred = rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]
        if self.preferred == "sms" and not self.mobile:
            self.preferred = None
        if self.preferred == "email" and not self.email:
            self.preferred = None
        # The channel this patient actually answers: usually the stated preference, else by age.
        if self.preferred and r() < 0.65:
            self.affinity = self.preferred
        else:
            young = age < 45
            self.affinity = rng.choices(
                ("sms", "email", "letter", "phone"), weights=(4, 3, 1, 1) if young else (1, 2, 3, 2)
            )[0]
        u = r()
        self.flags = (
            None
            if u > 0.017
            else (
                "deceased",
                "bankruptcy",
                "attorney_represented",
                "cease_communication",
                "confidential_address",
            )[min(4, int(u / 0.0034))]
        )
        self.self_pay = r() < 0.09
        # Coverage: Medicaid by income, Medicare by age, otherwise a commercial plan.
        fpl = self.income / (15_960 + 5_680 * (self.household - 1))
        if self.self_pay:
            self.payer = "Self-pay"
        elif fpl < 1.38 and r() < 0.7:
            self.payer = "Medicaid"
        elif age >= 65 and r() < 0.9:
            self.payer = "Medicare"
        else:
            self.payer = rng.choice(_PAYERS)
        self.credit = 0  # cents paid ahead of adjudication (copays at check-in)
        self.items: list[list[Any]] = []  # unpaid lines: [service_day, owed, charge, ins_paid, adj, desc]
        self.pending: list[list[Any]] = []  # claims awaiting insurance: [claim_id, service_day, billed, desc]
        self.first_stmt: int | None = None  # day index of the first statement
        self.n_stmt = 0
        self.stmt_due = False  # a statement task is scheduled
        self.cycle_oracle: float | None = None
        self.cycle_t = -1
        self.pay_pending = False
        self.plan: _Plan | None = None
        self.plans = 0
        self.dispute: str | None = None
        self.status = "open"
        self.contacts: deque[int] = deque(maxlen=16)
        self.last_pay: int | None = None
        self.joined = False
        self.n = 0

    @property
    def balance(self) -> int:
        """What the patient owes now, net of any credit (cents; negative is a credit)."""
        return sum(item[1] for item in self.items) - self.credit


class Practice:
    """A synthetic practice: ``patients`` guarantor accounts over ``days`` days from ``start``.

    `events` yields the practice's own (organic) events in time order; `respond` answers an engine
    action; `oracle_propensity` is the hidden probability of payment in the current statement cycle.
    """

    def __init__(
        self,
        seed: int = 7,
        patients: int = 2_000,
        days: int = 180,
        *,
        start: datetime = DEFAULT_START,
        practice_id: str | None = None,
    ) -> None:
        if patients < 1 or days < 1:
            raise ValueError("a practice needs at least one patient and one day")
        self.seed = seed
        self.days = days
        self.start = start.astimezone(UTC)
        self.end = days * DAY
        self.practice_id = practice_id or f"practice-sim-{seed}"
        self.source = f"sim/{self.practice_id}"
        self._epoch = self.start.timestamp()
        self._start_date = self.start.date()
        self._day_text: dict[int, str] = {}
        self._clock: list[str | None] = [None] * DAY  # "Thh:mm:ssZ" by second of the day, filled lazily
        self._heap: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0
        self._now = 0
        self._out: deque[dict[str, Any]] = deque()
        self._patients: list[_Patient] = []
        self._by_account: dict[str, _Patient] = {}
        self.totals: dict[str, int] = dict.fromkeys(
            (
                "billed_cents",
                "collected_cents",
                "collected_after_action_cents",
                "payments",
                "statements",
                "plans_started",
                "plans_defaulted",
                "plans_completed",
                "disputes",
                "placed_with_agency",
                "actions_answered",
            ),
            0,
        )
        root = random.Random(seed)
        for idx in range(patients):
            rng = random.Random(root.getrandbits(64))
            acct = f"ACC-{seed}-{idx:06d}"
            patient = _Patient(idx, acct, rng)
            self._patients.append(patient)
            self._by_account[acct] = patient
            existing = rng.random() < 0.75
            if existing:  # known at go-live: registered on day one, in business hours
                self._push(int(13 * HOUR + rng.uniform(0, 5 * HOUR)), _JOIN, idx, None)
                first = rng.expovariate(self._visit_rate(patient)) * 365 * DAY
            else:  # new patients register at their first visit
                first = rng.uniform(0.0, self.end)
            self._push(self._business(patient, int(first)), _ENCOUNTER, idx, None)

    # -- public API -------------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """The practice's events in time order (one pass; `respond` may be called between items)."""
        heap, out, pop = self._heap, self._out, heapq.heappop
        handlers = (
            self._on_join,
            self._on_encounter,
            self._on_claim,
            self._on_statement,
            self._on_pay,
            self._on_plan_enroll,
            self._on_plan_due,
            self._on_dispute_open,
            self._on_dispute_resolve,
            self._on_emit,
            self._on_effect,
        )
        patients = self._patients
        end = self.end
        while True:
            while out:
                yield out.popleft()
            if not heap or heap[0][0] >= end:
                return
            t, _, kind, idx, arg = pop(heap)
            self._now = t
            handlers[kind](patients[idx], t, arg)

    def oracle_propensity(self, account_id: str) -> float:
        """Hidden probability that the account pays within 30 days of its latest statement.

        It is what the simulator drew the patient's behaviour from in the current statement cycle,
        before any engine action; before a first statement it is the probability as of now.
        """
        patient = self._by_account[account_id]
        if patient.cycle_oracle is not None and self._now - patient.cycle_t < STATEMENT_CYCLE_DAYS * DAY:
            return patient.cycle_oracle
        return self._cycle_odds(patient, self._now)[0]

    def respond(
        self, action: Mapping[str, Any], at: datetime | str | None = None, *, enqueue: bool = False
    ) -> list[dict[str, Any]]:
        """What the patient does when an action reaches them: canonical events dated at or after ``at``.

        ``action`` is an action as on ``billing.actions`` (``kind``, ``channel``, ``account_id``,
        ``action_id``, ``not_before``, ``message.language``, ``plan_options``, ``settlement``...); a
        baseline policy can pass the same shape. Delivery waits for ``not_before``. The reply is shaped
        by channel fit (the patient's hidden best channel and stated preference), language fit, local
        time of day, days since the statement, contact fatigue, the balance and its age, and plan
        affordability. The events' effects (a payment lowers the balance, an accepted plan stops
        statements...) reach the practice's own later events at the events' times. With
        ``enqueue=True`` `events` also yields them at their times; otherwise the caller delivers them.
        """
        patient = self._by_account.get(str(action.get("account_id", "")))
        if patient is None or not patient.joined:
            return []
        action_id = str(action.get("action_id") or f"act-{self._seq}")
        rng = random.Random(f"{self.seed}|{action_id}")
        sent = self._to_sim(at) if at is not None else self._now
        if action.get("not_before"):
            sent = max(sent, self._to_sim(action["not_before"]))
        replies = _Reply(self, patient, action, action_id, rng, sent)
        replies.run()
        events = replies.finish()
        self.totals["actions_answered"] += 1
        for t, event in events:
            self._push(t, _EFFECT, patient.idx, (event, enqueue))
        return [event for _, event in events]

    def summary(self) -> dict[str, Any]:
        """Totals so far: patient responsibility billed, collected (and after an action), plans, ..."""
        totals: dict[str, Any] = dict(self.totals)
        outstanding = sum(p.balance for p in self._patients)
        totals["outstanding_cents"] = outstanding
        billed = totals["billed_cents"] or 1
        totals["collection_rate"] = round(totals["collected_cents"] / billed, 4)
        return totals

    def account_ids(self) -> list[str]:
        return [p.acct for p in self._patients]

    # -- scheduling and text helpers --------------------------------------------------------------

    def _push(self, t: int, kind: int, idx: int, arg: Any) -> None:
        # Never schedule into the past: the stream must stay in time order.
        self._seq += 1
        heapq.heappush(self._heap, (max(t, self._now), self._seq, kind, idx, arg))

    def _ts(self, t: int) -> str:
        day, sec = divmod(t, DAY)
        clock = self._clock[sec]
        if clock is None:
            hh, rem = divmod(sec, HOUR)
            clock = self._clock[sec] = f"T{hh:02d}:{rem // 60:02d}:{rem % 60:02d}Z"
        text = self._day_text.get(day)
        if text is None:
            text = self._date(day)
        return text + clock

    def _line(self, item: list[Any]) -> dict[str, Any]:
        """A statement line; the parts that never change are formatted once per line item."""
        if len(item) == 6:
            item.append(
                {
                    "service_date": self._date(item[0]),
                    "description": "Prior balance"
                    if item[5] == "legacy"
                    else str(item[5]).replace("denied", "Office visit"),
                    "charge": _money(item[2]),
                    "insurance_paid": _money(item[3]),
                    "adjustments": _money(item[4]),
                }
            )
        return {**item[6], "patient_owes": _money(item[1])}

    def _date(self, day: int) -> str:
        text = self._day_text.get(day)
        if text is None:
            text = self._day_text[day] = (self._start_date + timedelta(days=day)).isoformat()
        return text

    def _to_sim(self, moment: datetime | str) -> int:
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        return int(moment.timestamp() - self._epoch)

    @staticmethod
    def _visit_rate(patient: _Patient) -> float:
        return 2.4 if patient.age < 18 else 1.6 + patient.age / 60.0  # visits per year

    @staticmethod
    def _business(patient: _Patient, t: int) -> int:
        """The same day, moved into 08:00-18:00 in the patient's local time (offsets are standard time)."""
        day = t // DAY
        local_hour = 8 + (t % (10 * HOUR)) / HOUR
        return int(day * DAY + (local_hour - patient.offset) * HOUR)

    @staticmethod
    def _waking(patient: _Patient, t: int, rng: random.Random) -> int:
        """A moment on ``t``'s day between 07:00 and 23:00 local time, when patients pay and reply."""
        day = t // DAY
        return int(day * DAY + (rng.uniform(7.0, 23.0) - patient.offset) * HOUR)

    def _emit(self, patient: _Patient, t: int, etype: str, data: dict[str, Any]) -> dict[str, Any]:
        patient.n += 1
        data["account_id"] = patient.acct
        data["patient_id"] = patient.pid
        data["practice_id"] = self.practice_id
        event = {
            "specversion": "1.0",
            "id": f"sim{self.seed}-{patient.idx}-{patient.n}",
            "source": self.source,
            "type": etype,
            "time": self._ts(t),
            "subject": patient.acct,
            "datacontenttype": "application/json",
            "data": data,
        }
        self._out.append(event)
        return event

    def _later(self, patient: _Patient, t: int, etype: str, data: dict[str, Any]) -> None:
        """Emit at a later time, keeping the stream in time order."""
        self._push(t, _EMIT, patient.idx, (etype, data))

    def _account_data(self, patient: _Patient) -> dict[str, Any]:
        items = patient.items
        oldest = min(item[0] for item in items) if items else None
        data: dict[str, Any] = {
            "balance": _money(patient.balance),
            "status": patient.status,
            "self_pay": patient.self_pay,
        }
        if oldest is not None:
            data["oldest_unpaid_service_date"] = self._date(oldest)
        if patient.first_stmt is not None:
            data["first_statement_date"] = self._date(patient.first_stmt)
        return data

    # -- hidden behaviour -------------------------------------------------------------------------

    def _cycle_odds(self, p: _Patient, t: int) -> tuple[float, float, float, float, float]:
        """(oracle, dispute, plan enrolment, first instalment paid, pay) probabilities of a cycle at t."""
        balance = p.balance
        if balance <= 0 or p.status != "open" or p.flags in ("deceased", "bankruptcy"):
            return 0.0, 0.0, 0.0, 0.0, 0.0
        if p.dispute is not None:
            return 0.0, 0.0, 0.0, 0.0, 0.0
        dollars = balance / 100.0
        day = t // DAY
        age = day - min(item[0] for item in p.items)
        pending = sum(c[2] for c in p.pending) / 100.0
        pending_share = pending / (pending + dollars)
        denied = any(item[5] == "denied" for item in p.items)
        dispute = 0.006 + 0.03 * denied + 0.01 * (dollars > 1000) + 0.02 * pending_share
        logit = (
            0.2
            + Z_WEIGHT * p.z
            - 0.55 * math.log(dollars / 150.0)
            - 0.007 * age
            - 0.9 * pending_share
            + 0.3 * p.paperless
        )
        pay = _sig(logit)
        monthly, _ = self._plan_terms(p, balance)
        first = self._instalment_odds(p, monthly)
        # Self-service plans appeal more as the balance grows (PYMNTS), and to those who can afford
        # the instalment: few sign up for a monthly amount well beyond what they can spare.
        enrol = (
            _sig(-3.2 + 0.6 * math.log(dollars / 250.0) + 0.3 * p.z) * min(1.0, p.afford * 100 / monthly)
            if dollars >= 250 and p.plans < 2
            else 0.0
        )
        oracle = (1.0 - dispute) * (enrol * first + (1.0 - enrol) * pay)
        return oracle, dispute, enrol, first, pay

    @staticmethod
    def _plan_terms(p: _Patient, balance: int) -> tuple[int, int]:
        """The shortest standard term the patient can afford (else the longest): (monthly cents, term)."""
        for term in PLAN_TERMS:
            monthly = -(-balance // term)
            if monthly <= p.afford * 100:
                return monthly, term
        return -(-balance // PLAN_TERMS[-1]), PLAN_TERMS[-1]

    @staticmethod
    def _instalment_odds(p: _Patient, monthly_cents: int) -> float:
        # Affordability drives default: an instalment above ~80% of what the patient can spare is missed
        # far more often (Novant: defaults fell from 30% to <17% with affordable interest-free plans).
        strain = monthly_cents / 100.0 / max(p.afford, 1.0) - 0.8
        return _sig(2.9 + 0.9 * p.z - 3.0 * max(0.0, strain))

    def _pay_amount(self, p: _Patient, rng: random.Random, boost: float = 1.0) -> int:
        balance = p.balance
        if balance <= p.lump * 100 * boost:
            return balance
        part = int(p.lump * boost * rng.uniform(0.5, 1.0) / 5.0) * 500
        return max(1_000, min(balance, part))

    def _apply_payment(self, p: _Patient, amount: int) -> None:
        # Payments settle the oldest lines first.
        remaining = amount
        while remaining > 0 and p.items:
            item = p.items[0]
            take = min(item[1], remaining)
            item[1] -= take
            remaining -= take
            if item[1] <= 0:
                p.items.pop(0)
        p.credit += remaining  # paid ahead (a copay at check-in): applied at adjudication
        self.totals["collected_cents"] += amount
        self.totals["payments"] += 1

    # -- organic task handlers --------------------------------------------------------------------

    def _on_join(self, p: _Patient, t: int, arg: Any) -> None:
        if p.joined:
            return
        p.joined = True
        rng = p.rng
        years = p.age
        birth = self._start_date - timedelta(days=int(years * 365.25))
        data: dict[str, Any] = {
            "name": {"given": p.given, "family": p.family},
            "birth_date": birth.isoformat(),
            "language": p.lang,
            "address": {
                "line": f"{rng.randrange(1, 9999)} Main St",
                "city": "Springfield",
                "state": p.state,
                "postal_code": f"{rng.randrange(10_000, 99_999)}",
            },
            "consent": dict(p.consent),
            "guarantor_is_patient": years >= 18,
        }
        if p.email:
            data["email"] = f"{p.given[0].lower()}.{p.idx}@example.com"
        if p.mobile:
            data["mobile_phone"] = p.mobile
        if p.tz_known:
            data["timezone"] = p.tz
        if p.preferred:
            data["preferred_channel"] = p.preferred
        if p.flags:
            data["flags"] = {p.flags: True}
        self._emit(p, t, "billing.patient.updated", data)
        if t >= DAY:  # a new patient: nothing to sync
            return
        self._backfill(p, t)
        # Patients with a lower propensity are likelier to carry old debt into the window.
        if rng.random() < _sig(-0.6 - 0.8 * p.z):
            low, high, _ = rng.choices(_AGEING, weights=[a[2] for a in _AGEING])[0]
            age = _randint(rng, low, high)
            owed = self._responsibility(p, rng, -age)[0]
            p.items.append([-age, owed, owed * 2, 0, 0, "legacy"])
            self.totals["billed_cents"] += owed
            if age > 35:
                p.first_stmt = -age + _randint(rng, 20, 35)
                p.n_stmt = max(1, (age - 30) // STATEMENT_CYCLE_DAYS)
            self._schedule_statement(p, t + _randint(rng, 1, STATEMENT_CYCLE_DAYS) * DAY)
        self._emit(p, t, "billing.account.updated", self._account_data(p))

    def _backfill(self, p: _Patient, t: int) -> None:
        """The go-live sync of an existing patient's last year of payments (dated in the past).

        A practice system connected to the engine hands over its payment history, so the engine knows
        returning patients from day one. Past bills were paid cycle by cycle, in part or in full, with
        the same hidden behaviour as bills in the window, and copays at the desk as at any visit.
        """
        rng = p.rng
        day = -365.0
        while True:  # past visits: a Poisson process at the patient's visit rate
            day += rng.expovariate(self._visit_rate(p)) * 365
            if day > -30:
                break
            visit = int(day)
            if rng.random() < self._desk_odds(p) and p.payer not in ("Medicaid", "Self-pay"):
                self._past_payment(p, t, visit, 2_500, "in_person")
            owed = self._responsibility(p, rng, visit)[0]
            # Statement cycles after adjudication: pay in part or in full, as in the window.
            cycle_day = visit + _randint(rng, 30, 45)
            while owed > 0 and cycle_day < -1:
                age = cycle_day - visit
                cycle = _sig(
                    0.2 + Z_WEIGHT * p.z - 0.55 * math.log(owed / 15_000) - 0.007 * age + 0.3 * p.paperless
                )
                if rng.random() < cycle:
                    amount = min(owed, max(1_000, int(p.lump * 100)))
                    self._past_payment(p, t, min(-1, cycle_day + _randint(rng, 1, 20)), amount, "portal")
                    owed -= amount
                cycle_day += STATEMENT_CYCLE_DAYS

    def _past_payment(self, p: _Patient, t: int, day: int, amount: int, channel: str) -> None:
        posted = day * DAY + int((p.rng.uniform(9.0, 20.0) - p.offset) * HOUR)
        data = {
            "payment_id": f"PAY-{p.acct[4:]}-h{p.n + 1}",
            "amount": _money(amount),
            "posted_at": self._ts(posted),
            "method": "card",
            "channel": channel,
        }
        self._emit(p, t, "billing.payment.posted", data)

    def _on_encounter(self, p: _Patient, t: int, arg: Any) -> None:
        rng = p.rng
        if not p.joined:
            self._on_join(p, t, None)
        day = t // DAY
        desc = rng.choice(_SERVICES)
        claim_id = f"CLM-{p.acct[4:]}-{p.n + 1}"
        allowed, billed = self._amounts(rng, desc)
        self._emit(
            p,
            t,
            "billing.charge.posted",
            {
                "charge_id": f"CHG-{p.acct[4:]}-{p.n + 1}",
                "service_date": self._date(day),
                "description": desc,
                "amount": _money(billed),
                "provider": "Dr. Rivera",
            },
        )
        p.pending.append([claim_id, day, billed, desc, allowed])
        # At check-in the front desk asks for the copay and any prior balance (Cedar Pre-Visit,
        # point-of-service collection); willing patients pay there and then.
        if rng.random() < self._desk_odds(p):
            amount = 0 if p.payer in ("Medicaid", "Self-pay") else 2_500
            balance = p.balance
            if balance > 0 and rng.random() < _sig(
                -0.3 + 1.0 * p.z - 0.4 * math.log(max(balance, 1_000) / 15_000)
            ):
                amount += min(balance, int(p.lump * 100))
            if amount > 0:
                self._post_payment(p, t, amount, rng, desk=True)
        self._push(self._business(p, t + _randint(rng, 10, 35) * DAY), _CLAIM, p.idx, claim_id)
        gap = rng.expovariate(self._visit_rate(p)) * 365 * DAY
        self._push(self._business(p, int(t + max(gap, 7 * DAY))), _ENCOUNTER, p.idx, None)

    @staticmethod
    def _desk_odds(p: _Patient) -> float:
        """Probability of paying something at check-in (a copay, or toward the balance)."""
        if p.payer in ("Medicaid", "Self-pay") and p.balance <= 0:
            return 0.0
        return _sig(0.2 + 1.4 * p.z)

    @staticmethod
    def _amounts(rng: random.Random, desc: str) -> tuple[int, int]:
        if desc == "Procedure" or rng.random() < 0.03:
            allowed = math.exp(math.log(1_800.0) + rng.gauss(0.0, 0.8))
        else:
            allowed = math.exp(math.log(180.0) + rng.gauss(0.0, 0.7))
        allowed_cents = max(2_000, int(allowed * 100))
        return allowed_cents, int(allowed_cents * rng.uniform(1.3, 2.2))

    def _responsibility(self, p: _Patient, rng: random.Random, day: int) -> tuple[int, int, int, int]:
        """(patient owes, deductible, coinsurance, copay) for a typical claim adjudicated on ``day``."""
        allowed = self._amounts(rng, "Office visit")[0]
        return self._split(p, rng, allowed, day)

    @staticmethod
    def _split(p: _Patient, rng: random.Random, allowed: int, day: int) -> tuple[int, int, int, int]:
        if p.self_pay:
            return allowed, 0, 0, 0
        if p.payer == "Medicaid":  # nominal cost sharing at most
            copay = 400 if rng.random() < 0.3 else 0
            return min(allowed, copay), 0, 0, min(allowed, copay)
        if p.payer == "Medicare" and rng.random() < 0.7:  # a supplemental plan covers the 20%
            return 0, 0, 0, 0
        # Deductibles reset in January: early-year claims land on the patient far more often.
        in_deductible = rng.random() < 0.55 - 0.35 * ((day % 365) / 365.0)
        deductible = int(allowed * rng.uniform(0.3, 1.0)) if in_deductible else 0
        coinsurance = int((allowed - deductible) * 0.2)
        copay = 2_500 if rng.random() < 0.6 else 0
        owed = min(allowed, deductible + coinsurance + copay)
        return owed, deductible, coinsurance, min(copay, owed - deductible - coinsurance)

    def _on_claim(self, p: _Patient, t: int, claim_id: Any) -> None:
        rng = p.rng
        claim = next((c for c in p.pending if c[0] == claim_id), None)
        if claim is None:
            return
        _, service_day, billed, desc, allowed = claim
        if p.self_pay:  # no coverage: no claim, the patient owes the self-pay (allowed) rate
            p.pending.remove(claim)
            self._add_item(p, [service_day, allowed, billed, 0, billed - allowed, desc])
            self._after_new_balance(p, t)
            return
        u = rng.random()
        status = "paid" if u < 0.86 else "denied" if u < 0.92 else "partial" if u < 0.96 else "pending"
        if status == "pending":
            self._emit(
                p, t, "billing.claim.adjudicated", self._claim_data(p, claim, "pending", 0, 0, (0, 0, 0, 0))
            )
            self._push(self._business(p, t + _randint(rng, 14, 30) * DAY), _CLAIM, p.idx, claim_id)
            return
        p.pending.remove(claim)
        if status == "denied":
            owed, split = allowed, (0, 0, 0, allowed)
            paid = 0
        else:
            owed, ded, coins, copay = self._split(p, rng, allowed, t // DAY)
            paid = allowed - owed
            if status == "partial":
                paid //= 2
                owed = allowed - paid
            split = (ded, coins, copay, max(0, owed - ded - coins - copay))
        self._emit(p, t, "billing.claim.adjudicated", self._claim_data(p, claim, status, paid, owed, split))
        if owed <= 0:
            return
        self._add_item(
            p, [service_day, owed, billed, paid, billed - allowed, "denied" if status == "denied" else desc]
        )
        if p.plan is not None:  # new visits join the open plan (VisitPay)
            p.plan.remaining += owed
        self._after_new_balance(p, t)

    def _add_item(self, p: _Patient, item: list[Any]) -> None:
        """A new line the patient owes; money paid ahead at check-in is applied to it first."""
        self.totals["billed_cents"] += item[1]
        if p.credit > 0:
            used = min(p.credit, item[1])
            p.credit -= used
            item[1] -= used
        if item[1] > 0:
            p.items.append(item)

    def _after_new_balance(self, p: _Patient, t: int) -> None:
        self._emit(p, t, "billing.account.updated", self._account_data(p))
        if p.plan is None and p.status == "open" and not p.stmt_due:
            self._schedule_statement(p, t + _randint(p.rng, 1, 4) * DAY)

    def _claim_data(
        self,
        p: _Patient,
        claim: list[Any],
        status: str,
        paid: int,
        owed: int,
        split: tuple[int, int, int, int],
    ) -> dict[str, Any]:
        claim_id, service_day, billed, _, allowed = claim
        adjustments = [{"group": "CO", "reason": "45", "amount": _money(billed - allowed)}]
        for reason, amount in zip(("1", "2", "3", "204"), split, strict=True):
            if amount:
                adjustments.append({"group": "PR", "reason": reason, "amount": _money(amount)})
        return {
            "claim_id": claim_id,
            "payer": p.payer,
            "service_date": self._date(service_day),
            "billed": _money(billed),
            "allowed": _money(allowed),
            "insurance_paid": _money(paid),
            "patient_responsibility": _money(owed),
            "breakdown": {
                "deductible": _money(split[0]),
                "coinsurance": _money(split[1]),
                "copay": _money(split[2]),
                "noncovered": _money(split[3]),
            },
            "adjustments": adjustments if status != "pending" else [],
            "status": status,
        }

    def _schedule_statement(self, p: _Patient, t: int) -> None:
        p.stmt_due = True
        # Statement runs are a nightly batch: 02:00-05:00 Eastern.
        self._push((t // DAY) * DAY + 7 * HOUR + int(p.rng.random() * 3 * HOUR), _STATEMENT, p.idx, None)

    def _on_statement(self, p: _Patient, t: int, arg: Any) -> None:
        p.stmt_due = False
        balance = p.balance
        if balance <= 0 or p.plan is not None or p.status != "open":
            return
        rng = p.rng
        day = t // DAY
        if p.first_stmt is None:
            p.first_stmt = day
        elif (
            day - p.first_stmt >= COLLECTIONS_AFTER_DAYS
            and (p.last_pay is None or t - p.last_pay > 90 * DAY)
            and rng.random() < 0.6
        ):
            p.status = "in_collections"  # placed with an agency: the practice stops billing
            self.totals["placed_with_agency"] += 1
            self._emit(p, t, "billing.account.updated", self._account_data(p))
            return
        p.n_stmt += 1
        self.totals["statements"] += 1
        pending = sum(c[2] for c in p.pending)
        lines = [self._line(item) for item in p.items[:6]]
        self._emit(
            p,
            t,
            "billing.statement.generated",
            {
                "statement_id": f"ST-{p.acct[4:]}-{p.n_stmt}",
                "statement_date": self._date(day),
                "due_date": self._date(day + 25),
                "balance_due": _money(balance),
                "insurance_pending": _money(pending),
                "lines": lines,
            },
        )
        oracle, dispute, enrol, _first, pay = self._cycle_odds(p, t)
        # A visit within the window may bring a payment at the desk. The oracle uses the patient's
        # hidden visit rate, not the date of the next visit: it knows the patient, not the future.
        visit = 1.0 - math.exp(-self._visit_rate(p) * STATEMENT_CYCLE_DAYS / 365.0)
        oracle = 1.0 - (1.0 - oracle) * (1.0 - visit * self._desk_odds(p))
        p.cycle_oracle, p.cycle_t = oracle, t
        u = rng.random()
        will_pay = False
        if u < dispute:
            self._push(self._business(p, t + _randint(rng, 2, 15) * DAY), _DISPUTE_OPEN, p.idx, None)
        elif rng.random() < enrol:
            self._push(self._waking(p, t + _randint(rng, 1, 8) * DAY, rng), _PLAN_ENROLL, p.idx, None)
        elif rng.random() < pay:
            will_pay = True
            delay = (0.2 + rng.expovariate(1 / 3.5)) if p.paperless else (3.0 + rng.expovariate(1 / 6.0))
            p.pay_pending = True
            self._push(self._waking(p, t + int(min(delay, 27.0) * DAY), rng), _PAY, p.idx, "cycle")
        self._deliver_statement(p, t, rng, will_pay)
        # A few patients call to have the bill explained (Cedar: 11% of calls), more when insurance is
        # still pending or the balance is large; engaged patients call more.
        call = (0.04 + 0.12 * pending / (pending + balance) + 0.04 * (balance > 50_000)) * (1.0 + 0.3 * p.z)
        if rng.random() < call:
            at = self._business(p, t + _randint(rng, 3, 12) * DAY)
            self._later(
                p, at, "billing.communication.logged", self._comm(p, at, "phone", "inbound", "conversation")
            )
        self._schedule_statement(p, t + STATEMENT_CYCLE_DAYS * DAY)

    def _deliver_statement(self, p: _Patient, t: int, rng: random.Random, will_pay: bool) -> None:
        if p.paperless:
            if rng.random() < 0.02:
                outcome, at = "bounced", t + 300
            else:
                opened = rng.random() < _sig(-0.2 + 1.5 * p.z + 0.8 * (p.affinity == "email"))
                clicked = opened and rng.random() < (0.7 if will_pay else _sig(-1.5 + 0.8 * p.z))
                outcome = "clicked" if clicked else "opened" if opened else "delivered"
                at = self._waking(p, t + int(rng.expovariate(1 / 0.8) * DAY), rng) if opened else t + 300
                at = max(at, t + 300)
            self._later(
                p, at, "billing.communication.logged", self._comm(p, t + 120, "email", "outbound", outcome)
            )
        else:
            outcome = "failed" if rng.random() < 0.02 else "delivered"  # returned mail
            self._later(
                p,
                t + 3 * DAY,
                "billing.communication.logged",
                self._comm(p, t + 120, "letter", "outbound", outcome),
            )

    def _comm(
        self, p: _Patient, at: int, channel: str, direction: str, outcome: str, **extra: Any
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "communication_id": f"COM-{p.acct[4:]}-{p.n + 1}-{at}",
            "channel": channel,
            "direction": direction,
            "at": self._ts(at),
            "outcome": outcome,
        }
        data.update(extra)
        return data

    def _on_pay(self, p: _Patient, t: int, arg: Any) -> None:
        p.pay_pending = False
        if p.balance <= 0 or p.status != "open" or p.plan is not None:
            return
        rng = p.rng
        amount = self._pay_amount(p, rng)
        self._post_payment(p, t, amount, rng)

    def _post_payment(
        self, p: _Patient, t: int, amount: int, rng: random.Random, desk: bool = False, **extra: Any
    ) -> None:
        if desk:
            method, channel = ("card" if rng.random() < 0.8 else "cash"), "in_person"
        elif p.paperless or rng.random() < 0.45:
            method, channel = ("card", "portal") if rng.random() < 0.85 else ("card", "phone")
        else:
            method, channel = ("check", "mail") if rng.random() < 0.6 else ("card", "phone")
        data = {
            "payment_id": f"PAY-{p.acct[4:]}-{p.n + 1}",
            "amount": _money(amount),
            "posted_at": self._ts(t),
            "method": method,
            "channel": channel,
        }
        data.update(extra)
        self._emit(p, t, "billing.payment.posted", data)
        self._apply_payment(p, amount)
        p.last_pay = t
        self._emit(p, t, "billing.account.updated", self._account_data(p))

    def _on_plan_enroll(self, p: _Patient, t: int, arg: Any) -> None:
        balance = p.balance
        if balance <= 0 or p.plan is not None or p.status != "open":
            return
        monthly, term = self._plan_terms(p, balance)
        if isinstance(arg, tuple):  # an offered option the patient accepted
            monthly, term = arg
        rng = p.rng
        p.plans += 1
        self.totals["plans_started"] += 1
        first_due = self._waking(p, t + _randint(rng, 7, 14) * DAY, rng)
        p.plan = _Plan(
            f"PLAN-{p.acct[4:]}-{p.plans}",
            monthly,
            term,
            balance,
            first_due,
            self._instalment_odds(p, monthly),
        )
        self._emit(p, t, "billing.payment_plan.updated", self._plan_data(p, "active"))
        self._push(first_due, _PLAN_DUE, p.idx, p.plan.plan_id)

    def _plan_data(self, p: _Patient, status: str) -> dict[str, Any]:
        plan = p.plan
        assert plan is not None
        data = {
            "plan_id": plan.plan_id,
            "status": status,
            "monthly_amount": _money(plan.monthly),
            "term_months": plan.term,
            "missed_payments": plan.missed,
            "balance_remaining": _money(max(0, plan.remaining)),
        }
        if status == "active":
            data["next_due_date"] = self._date(plan.next_due // DAY)
        return data

    def _on_plan_due(self, p: _Patient, t: int, plan_id: Any) -> None:
        plan = p.plan
        if plan is None or plan.plan_id != plan_id:
            return
        rng = p.rng
        plan.next_due = t + STATEMENT_CYCLE_DAYS * DAY
        if rng.random() < plan.q:
            amount = min(plan.monthly, p.balance)
            if rng.random() < 0.05:  # a short payment: the engine's short-pay inquiry has work to do
                amount = int(amount * rng.uniform(0.3, 0.8))
            if amount > 0:
                plan.remaining -= amount
                self._post_payment(
                    p,
                    t,
                    amount,
                    rng,
                    plan_id=plan.plan_id,
                    expected_amount=_money(min(plan.monthly, p.balance)),
                )
        else:
            plan.missed += 1
        if p.balance <= 0 or plan.remaining <= 0:
            self.totals["plans_completed"] += 1
            self._emit(p, t, "billing.payment_plan.updated", self._plan_data(p, "completed"))
            p.plan = None
            if p.balance > 0:
                self._schedule_statement(p, t + DAY)
            return
        if plan.missed >= MAX_DEFAULT_MISSES:
            self.totals["plans_defaulted"] += 1
            self._emit(p, t, "billing.payment_plan.updated", self._plan_data(p, "defaulted"))
            p.plan = None
            self._schedule_statement(p, t + DAY)
            return
        self._emit(p, t, "billing.payment_plan.updated", self._plan_data(p, "active"))
        self._push(plan.next_due, _PLAN_DUE, p.idx, plan.plan_id)

    def _on_dispute_open(self, p: _Patient, t: int, arg: Any) -> None:
        if p.dispute is not None:
            return
        rng = p.rng
        p.dispute = f"DSP-{p.acct[4:]}-{p.n + 1}"
        self.totals["disputes"] += 1
        at = t
        reason = rng.choice(("charge not recognised", "insurance should have paid", "billed twice"))
        self._emit(
            p,
            at,
            "billing.dispute.updated",
            {"dispute_id": p.dispute, "status": "opened", "reason": reason, "received_at": self._ts(at)},
        )
        self._push(at + _randint(rng, 10, 45) * DAY, _DISPUTE_RESOLVE, p.idx, p.dispute)

    def _on_dispute_resolve(self, p: _Patient, t: int, dispute_id: Any) -> None:
        if p.dispute != dispute_id:
            return
        rng = p.rng
        p.dispute = None
        self._emit(
            p,
            t,
            "billing.dispute.updated",
            {"dispute_id": dispute_id, "status": "resolved", "received_at": self._ts(t)},
        )
        if rng.random() < 0.5 and p.items:  # upheld in part: the practice writes some of it off
            share = rng.uniform(0.3, 1.0)
            for item in p.items:
                item[1] -= int(item[1] * share)
            p.items = [item for item in p.items if item[1] > 0]
            self._emit(p, t, "billing.account.updated", self._account_data(p))

    def _on_emit(self, p: _Patient, t: int, arg: Any) -> None:
        etype, data = arg
        self._emit(p, t, etype, data)

    def _on_effect(self, p: _Patient, t: int, arg: Any) -> None:
        """A reply to an action takes effect on the practice's books at its time."""
        event, emit = arg
        data = event["data"]
        etype = event["type"]
        if etype == "billing.payment.posted":
            amount = min(round(float(data["amount"]) * 100), p.balance)
            p.pay_pending = False
            if amount > 0:
                self._apply_payment(p, amount)
                self.totals["collected_after_action_cents"] += amount
                p.last_pay = t
                if p.plan is not None and data.get("plan_id") == p.plan.plan_id:
                    p.plan.remaining -= amount
                # The practice system posts the new balance, as after any payment.
                self._emit(p, t, "billing.account.updated", self._account_data(p))
        elif etype == "billing.payment_plan.updated" and data["status"] == "active" and p.plan is None:
            monthly = round(float(data["monthly_amount"]) * 100)
            p.plans += 1
            self.totals["plans_started"] += 1
            p.plan = _Plan(
                data["plan_id"],
                monthly,
                data["term_months"],
                p.balance,
                t + 14 * DAY,
                self._instalment_odds(p, monthly),
            )
            self._push(p.plan.next_due, _PLAN_DUE, p.idx, p.plan.plan_id)
        elif etype == "billing.consent.updated" and data["channel"] in ("sms", "all") and not data["granted"]:
            p.sms_ok = False
        elif etype == "billing.dispute.updated" and data["status"] == "opened" and p.dispute is None:
            p.dispute = data["dispute_id"]
            self.totals["disputes"] += 1
            self._push(t + _randint(p.rng, 10, 45) * DAY, _DISPUTE_RESOLVE, p.idx, p.dispute)
        elif etype == "billing.account.updated":
            target = round(float(data["balance"]) * 100)
            cut = p.balance - target
            while cut > 0 and p.items:  # an agreed discount or settlement written off, newest first
                item = p.items[-1]
                take = min(item[1], cut)
                item[1] -= take
                cut -= take
                if item[1] <= 0:
                    p.items.pop()
        if emit:
            self._out.append(event)


class _Reply:
    """One patient's reply to one action: builds the events, dated from the moment of delivery."""

    def __init__(
        self,
        practice: Practice,
        p: _Patient,
        action: Mapping[str, Any],
        action_id: str,
        rng: random.Random,
        sent: int,
    ) -> None:
        self.practice = practice
        self.p = p
        self.action = action
        self.action_id = action_id
        self.rng = rng
        self.sent = sent
        self.kind = str(action.get("kind", ""))
        self.channel = str(action.get("channel", "letter"))
        self.events: list[tuple[int, str, dict[str, Any]]] = []

    def add(self, t: int, etype: str, data: dict[str, Any]) -> None:
        self.events.append((max(t, self.sent), etype, data))

    def comm(self, t: int, channel: str, direction: str, outcome: str, **extra: Any) -> None:
        p = self.p
        data: dict[str, Any] = {
            "communication_id": f"COM-{self.action_id}-{len(self.events) + 1}",
            "channel": channel,
            "direction": direction,
            "at": self.practice._ts(max(t, self.sent)),
            "outcome": outcome,
            "action_id": self.action_id,
        }
        data.update(extra)
        self.add(t, "billing.communication.logged", data)
        if direction == "outbound":
            p.contacts.append(t)

    def run(self) -> None:
        p, rng, kind, channel, sent = self.p, self.rng, self.kind, self.channel, self.sent
        if kind == "platform_update" or p.flags == "deceased":
            return
        if kind == "staff_task":
            self.call()
            return
        # Delivery: what the channel can reach.
        unreachable = (
            (channel == "email" and not p.email)
            or (channel == "sms" and (not p.mobile or not p.sms_ok))
            or (channel == "portal" and not p.consent["portal"])
        )
        if unreachable:
            self.comm(sent + 60, channel, "outbound", "bounced" if channel == "email" else "failed")
            return
        if channel == "letter" and rng.random() < 0.02:
            self.comm(sent + 3 * DAY, "letter", "outbound", "failed")
            return
        fatigue = sum(1 for c in p.contacts if sent - c < 7 * DAY)
        message = self.action.get("message") or {}
        language = message.get("language", "en") if isinstance(message, Mapping) else "en"
        local_hour = ((sent % DAY) / HOUR + p.offset) % 24
        timing = 0.0 if 9 <= local_hour < 20 else -0.6
        recent_statement = p.cycle_t >= 0 and sent - p.cycle_t < 10 * DAY
        fit = 1.5 * (channel == p.affinity) + 0.5 * (channel == p.preferred) - 1.0 * (language != p.lang)
        base = {"sms": 0.6, "email": -0.2, "letter": 0.0, "portal": -0.5}.get(channel, -0.5)
        engaged = rng.random() < _sig(
            base + 0.8 * p.z + fit + timing + 0.3 * recent_statement - 0.4 * fatigue
        )
        if channel == "letter":  # the mail takes days
            seen = sent + int((3.0 + rng.expovariate(1 / 2.0)) * DAY)
        else:
            seen = sent + 60 + int(rng.expovariate(1 / {"sms": 0.1, "email": 0.5}.get(channel, 1.0)) * DAY)
        if channel == "sms" and rng.random() < 0.01 + 0.03 * max(0, fatigue - 1) + 0.02 * (
            language != p.lang
        ):
            self.comm(sent + 60, channel, "outbound", "delivered")
            self.stop(seen)
            return
        outcome = "delivered"
        if engaged and channel in ("email", "portal"):
            outcome = "opened"
        if not engaged:
            self.comm(seen if channel == "letter" else sent + 60, channel, "outbound", outcome)
            return
        acted = self.decide(seen, fit, timing, fatigue)
        if acted and channel in ("sms", "email"):
            outcome = "clicked"
        self.comm(seen, channel, "outbound", outcome)
        if not acted and channel in ("sms", "email") and rng.random() < 0.04:
            text = "¿Puedo pagar en partes?" if p.lang == "es" else "Can I pay this in installments?"
            self.comm(seen + HOUR, channel, "inbound", "replied", text=text)

    def decide(self, seen: int, fit: float, timing: float, fatigue: int) -> bool:
        """Whether the engaged patient acts on the message (pays, takes a plan, applies...)."""
        p, rng, kind = self.p, self.rng, self.kind
        balance = p.balance
        if balance <= 0 or p.status == "written_off" or p.flags in ("bankruptcy",):
            return False
        dollars = balance / 100.0
        age = seen // DAY - min(item[0] for item in p.items)
        if kind == "assistance_invite":
            return self.assistance(seen)
        if p.dispute is None and rng.random() < 0.01 + 0.02 * (kind == "payment_reminder") * (dollars > 1000):
            self.dispute(seen)
            return False
        if kind == "payment_plan_offer":
            return self.plan_offer(seen)
        if kind == "settlement_offer":
            return self.settlement(seen)
        if p.pay_pending or p.dispute is not None:
            return p.pay_pending  # already meant to pay this cycle; the message is read, nothing more
        lift = {
            "statement_message": 0.3,
            "payment_reminder": 0.2,
            "short_pay_inquiry": 0.4,
            "conversation_reply": 0.6,
        }
        logit = (
            -0.6
            + lift.get(kind, 0.0)
            + 0.9 * p.z
            - 0.45 * math.log(max(dollars, 1.0) / 150.0)
            - 0.006 * age
            + 0.4 * fit
            + timing
            - 0.3 * fatigue
            + 0.4 * (self.channel in ("sms", "email"))  # a pay link beats a paper slip
        )
        if p.plan is not None:  # a plan reminder: catch up the instalment
            if rng.random() < _sig(logit + 1.0):
                self.pay(seen, min(p.plan.monthly, balance), plan_id=p.plan.plan_id)
                return True
            return False
        if rng.random() < _sig(logit):
            self.pay(seen, self.practice._pay_amount(p, rng, boost=1.2))
            return True
        return False

    def pay(self, seen: int, amount: int, **extra: Any) -> None:
        p, rng = self.p, self.rng
        t = self.practice._waking(p, seen + int(rng.uniform(0, 2) * DAY), rng)
        t = max(t, seen + 600)
        channel = (
            "portal"
            if self.channel in ("sms", "email", "portal")
            else "phone"
            if self.channel == "phone"
            else ("mail" if rng.random() < 0.5 else "portal")
        )
        method = "check" if channel == "mail" else "card"
        data: dict[str, Any] = {
            "payment_id": f"PAY-{self.action_id}",
            "amount": _money(amount),
            "posted_at": self.practice._ts(t),
            "method": method,
            "channel": channel,
        }
        if extra.get("plan_id"):
            data["plan_id"] = extra["plan_id"]
            data["expected_amount"] = _money(amount)
        self.add(t, "billing.payment.posted", data)
        p.pay_pending = True  # until the payment lands (cleared when it takes effect or the cycle moves on)

    def plan_offer(self, seen: int) -> bool:
        p, rng = self.p, self.rng
        if p.plan is not None or p.dispute is not None:
            return False
        options = [o for o in self.action.get("plan_options") or [] if isinstance(o, Mapping)]
        if not options:
            monthly, term = self.practice._plan_terms(p, p.balance)
            options = [{"monthly_amount": _money(monthly), "term_months": term}]

        # The patient takes the shortest plan they can afford; affordability drives the take-up.
        def cents(o: Mapping[str, Any]) -> int:
            return round(float(o["monthly_amount"]) * 100)

        affordable = [o for o in options if cents(o) <= p.afford * 100 * 1.1]
        choice = (
            min(affordable, key=lambda o: int(o["term_months"])) if affordable else min(options, key=cents)
        )
        margin = p.afford * 100 / max(cents(choice), 1)
        if rng.random() >= _sig(-0.4 + 0.6 * p.z + 1.2 * min(margin - 1.0, 1.0) + 0.3 * (p.balance > 50_000)):
            return False
        at = self.practice._waking(p, seen + int(rng.uniform(0, 3) * DAY), rng)
        first_due = self.practice._date((at + 14 * DAY) // DAY)
        self.add(
            at,
            "billing.payment_plan.updated",
            {
                "plan_id": f"PLAN-{self.action_id}",
                "status": "active",
                "monthly_amount": _money(cents(choice)),
                "term_months": int(choice["term_months"]),
                "next_due_date": first_due,
                "missed_payments": 0,
                "balance_remaining": _money(p.balance),
            },
        )
        return True

    def settlement(self, seen: int) -> bool:
        p, rng = self.p, self.rng
        offer = self.action.get("settlement") or {}
        amount = round(float(offer.get("amount", p.balance / 100.0 * 0.8)) * 100)
        if amount <= 0 or rng.random() >= _sig(0.5 * p.z + 1.5 * (p.lump * 150 / amount - 1.0)):
            return False
        self.pay(seen, min(amount, p.balance))
        t = self.events[-1][0]
        remainder = max(0, p.balance - amount)
        if remainder:
            data = self.practice._account_data(p)
            data["balance"] = _money(0)
            data.pop("oldest_unpaid_service_date", None)
            self.add(t + 1, "billing.account.updated", data)
        return True

    def assistance(self, seen: int) -> bool:
        p, rng = self.p, self.rng
        fpl = p.income / (15_960 + 5_680 * (p.household - 1))
        if rng.random() >= _sig(0.8 - 0.8 * fpl):
            return False
        applied = self.practice._waking(p, seen + _randint(rng, 1, 10) * DAY, rng)
        self.add(
            applied,
            "billing.assistance.updated",
            {
                "status": "applied",
                "household_size": p.household,
                "annual_income": _money(int(p.income) * 100),
            },
        )
        decided = applied + _randint(rng, 10, 30) * DAY
        if fpl > 4.0:
            self.add(decided, "billing.assistance.updated", {"status": "denied"})
            return True
        discount = 100.0 if fpl <= 2.0 else 100.0 - 80.0 * (fpl - 2.0) / 2.0
        self.add(
            decided, "billing.assistance.updated", {"status": "approved", "discount_pct": f"{discount:.2f}"}
        )
        data = self.practice._account_data(p)
        data["balance"] = _money(int(p.balance * (1.0 - discount / 100.0)))
        self.add(decided + 60, "billing.account.updated", data)
        return True

    def dispute(self, seen: int) -> None:
        t = self.practice._business(self.p, seen + DAY)
        data = {"dispute_id": f"DSP-{self.action_id}", "status": "opened", "reason": "amount questioned"}
        data["received_at"] = self.practice._ts(max(t, self.sent))
        self.add(t, "billing.dispute.updated", data)

    def stop(self, seen: int) -> None:
        p, rng = self.p, self.rng
        if rng.random() < 0.15:  # an unclear reply: staff must read it
            self.comm(seen, "sms", "inbound", "replied", text="no más" if p.lang == "es" else "wrong number")
            return
        self.comm(seen, "sms", "inbound", "replied", text=rng.choice(("STOP", "Stop", "UNSUBSCRIBE")))
        data = {
            "channel": "sms",
            "granted": False,
            "address": p.mobile,
            "at": self.practice._ts(max(seen, self.sent)),
        }
        self.add(seen + 1, "billing.consent.updated", data)
        p.sms_ok = False

    def call(self) -> None:
        """A staff phone call: answered or not; a conversation can end in a payment or a plan."""
        p, rng, sent = self.p, self.rng, self.sent
        at = self.practice._business(p, sent)
        if not p.mobile:
            self.comm(at, "phone", "outbound", "failed")
            return
        answer = _sig(-0.6 + 0.6 * p.z + 1.2 * (p.affinity == "phone"))
        if rng.random() >= answer:
            self.comm(at, "phone", "outbound", "voicemail" if rng.random() < 0.6 else "no_answer")
            return
        self.comm(at, "phone", "outbound", "conversation")
        if self.p.balance > 0 and p.dispute is None and not p.pay_pending:
            if p.balance > p.lump * 100 and p.plan is None:
                self.plan_offer(at)
            elif rng.random() < _sig(0.2 + 0.9 * p.z - 0.4 * math.log(max(p.balance, 100) / 15_000)):
                self.channel = "phone"
                self.pay(at, self.practice._pay_amount(p, rng, boost=1.2))

    def finish(self) -> list[tuple[int, dict[str, Any]]]:
        practice, p = self.practice, self.p
        out: list[tuple[int, dict[str, Any]]] = []
        for k, (t, etype, data) in enumerate(sorted(self.events, key=lambda e: e[0]), start=1):
            data = {"account_id": p.acct, "patient_id": p.pid, "practice_id": practice.practice_id, **data}
            event = {
                "specversion": "1.0",
                "id": f"{self.action_id}-r{k}",
                "source": practice.source,
                "type": etype,
                "time": practice._ts(t),
                "subject": p.acct,
                "datacontenttype": "application/json",
                "data": data,
            }
            out.append((t, event))
        return out


class FixedCadence:
    """The baseline the demo compares against: the practice's statements every 30 days, plus a letter
    reminder at 60 and 90 days after the first statement while a balance remains.

    Feed it every event (`observe`), then ask for the day's reminders (`due`); answer them with
    `Practice.respond` exactly like engine actions.

    >>> practice = Practice(seed=3, patients=40, days=120)
    >>> baseline = FixedCadence()
    >>> sent = []
    >>> for event in practice.events():
    ...     baseline.observe(event)
    ...     for action in baseline.due(event["time"]):
    ...         sent.append(action)
    ...         _ = practice.respond(action, action["not_before"])
    >>> sorted({a["kind"] for a in sent}), sent[0]["channel"]
    (['payment_reminder'], 'letter')
    """

    def __init__(self, reminder_days: tuple[int, ...] = (60, 90)) -> None:
        self.reminder_days = reminder_days
        self._accounts: dict[str, dict[str, Any]] = {}

    def observe(self, event: Mapping[str, Any]) -> None:
        data = event["data"]
        acct = self._accounts.setdefault(
            data["account_id"],
            {"first": None, "balance": "0.00", "sent": 0, "ids": (data["patient_id"], data["practice_id"])},
        )
        if event["type"] == "billing.statement.generated" and acct["first"] is None:
            acct["first"] = date.fromisoformat(data["statement_date"])
        if event["type"] == "billing.account.updated":
            acct["balance"] = data["balance"]
            if data.get("status") != "open":
                acct["sent"] = len(self.reminder_days)
        if event["type"] == "billing.statement.generated":
            acct["balance"] = data["balance_due"]

    def due(self, now: datetime | str) -> list[dict[str, Any]]:
        moment = datetime.fromisoformat(now.replace("Z", "+00:00")) if isinstance(now, str) else now
        actions = []
        for account_id, acct in self._accounts.items():
            first, sent = acct["first"], acct["sent"]
            if first is None or sent >= len(self.reminder_days) or float(acct["balance"]) <= 0:
                continue
            if (moment.date() - first).days >= self.reminder_days[sent]:
                acct["sent"] = sent + 1
                stamp = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
                actions.append(
                    {
                        "action_id": f"base-{account_id}-{sent + 1}",
                        "account_id": account_id,
                        "patient_id": acct["ids"][0],
                        "practice_id": acct["ids"][1],
                        "kind": "payment_reminder",
                        "channel": "letter",
                        "created_at": stamp,
                        "not_before": stamp,
                        "message": {
                            "language": "en",
                            "body": "Reminder: you have a balance due.",
                            "source": "template",
                        },
                    }
                )
        return actions
