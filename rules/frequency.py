"""Which contacts count, and the day rules they make for a new contact on a channel.

Counted per person, across every number and address (Reg F 1006.14(b), F-11: "every number for that person
counts together"): outbound contacts, logged or planned by a released action, except outcomes that never
reached anyone (a network failure). An inbound call counts only as a conversation, which starts the call
pause. Days are calendar days in the patient's reference zone.

>>> from datetime import datetime, UTC
>>> from rules.policy import load_policy
>>> from rules.state import ContactFact
>>> policy = load_policy()
>>> calls = [ContactFact(at=datetime(2026, 3, d, 15, tzinfo=UTC), channel="phone", outcome="no_answer")
...          for d in range(4, 11)]
>>> ledger = Ledger.build(calls, "America/New_York", policy)
>>> [rule.name for rule in ledger.day_rules("phone", None, policy)]
['G-CALL-FREQ', 'G-CALL-PAUSE']
>>> ledger.day_rules("phone", None, policy)[0].peak(date(2026, 3, 10))
7
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

from rules.policy import Policy
from rules.schedule import DayCap, DayPause, DayRule, local_day
from rules.state import ContactFact


@dataclass(frozen=True)
class Ledger:
    """The contacts that count, by channel and calendar day in the reference zone.

    Counted when first read: every decision builds a ledger (and rebuilds it when its state changes),
    but only a candidate that reaches the gates reads one, and most daily scans raise none.
    """

    contacts: tuple[ContactFact, ...]
    reference_zone: str
    policy: Policy

    @classmethod
    def build(cls, contacts: Iterable[ContactFact], reference_zone: str, policy: Policy) -> Ledger:
        return cls(tuple(contacts), reference_zone, policy)

    @cached_property
    def _counts(self) -> tuple[dict[str, Counter[date]], tuple[date, ...]]:
        excluded = set(self.policy.frequency.excluded_outcomes)
        by_channel: dict[str, Counter[date]] = {}
        conversations: list[date] = []
        for contact in self.contacts:
            day = local_day(contact.at, self.reference_zone)
            if contact.outcome == "conversation":
                conversations.append(day)
            if contact.direction == "outbound" and contact.outcome not in excluded:
                by_channel.setdefault(contact.channel, Counter())[day] += 1
        return by_channel, tuple(sorted(set(conversations)))

    @property
    def by_channel(self) -> dict[str, Counter[date]]:
        """Outbound contacts that count, per channel and day."""
        return self._counts[0]

    @property
    def conversations(self) -> tuple[date, ...]:
        """The days with a conversation (they start the call pause), in order."""
        return self._counts[1]

    def days(self, *channels: str) -> Counter[date]:
        if len(channels) == 1:
            return self.by_channel.get(channels[0], Counter())
        total: Counter[date] = Counter()
        for channel in channels:
            total.update(self.by_channel.get(channel, Counter()))
        return total

    def day_rules(self, channel: str, state_code: str | None, policy: Policy) -> list[DayRule]:
        """The frequency rules a new contact on ``channel`` must satisfy, named by their gate."""
        freq = policy.frequency
        rules: list[DayRule] = []
        if channel == "phone":
            rules.append(
                DayCap("G-CALL-FREQ", self.days("phone"), freq.calls.max_in_window, freq.window_days)
            )
            rules.append(
                DayPause("G-CALL-PAUSE", self.conversations, freq.calls.pause_after_conversation_days)
            )
        elif channel == "sms":
            rules.append(DayCap("G-SMS-FREQ", self.days("sms"), freq.sms.max_in_window, freq.window_days))
        elif channel == "email":
            rules.append(
                DayCap("G-EMAIL-FREQ", self.days("email"), freq.email.max_in_window, freq.window_days)
            )
        cap = policy.state_caps.get(state_code or "")
        if cap is not None and channel in cap.channels:
            rules.append(
                DayCap(f"G-STATE-{state_code}", self.days(*cap.channels), cap.max_in_window, cap.window_days)
            )
        return rules
