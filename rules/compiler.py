"""The policy compiled onto durable-rules JSON rulesets: use-case triggers and compliance gates.

Two rulesets per policy, both in the engine's declarative JSON form (``{"all": [{"m": expr}], "run": name}``,
see durable-rules ``docs/json/reference.md``):

* ``usecases``: one fact per decision (the account's numbers and the trigger) → every use case whose
  thresholds hold fires;
* ``gates``: one fact per candidate → every gate rule that is *not* a pass fires. Rules fire on a fact
  (not an event), so every matching rule fires, not only the first; a gate whose rules do not fire passed.

Thresholds are written into the rules from the policy (money as integer cents, so comparisons are exact).
Every fact carries every field in `USECASE_FACTS` / `GATE_FACTS`: ``$neq`` does not match a missing
field, so a fact with a hole could pass a gate it should fail (`rules.engine` refuses such facts).

>>> from rules.policy import load_policy
>>> gates = compile_gates(load_policy())
>>> gates.definition()["G-CALL-FREQ.delay"]["all"][0]["m"]["$and"][2]
{'$gte': {'calls_peak': 7}}
>>> "G-STATE-MA.suppress" in gates.definition(), gates.gate_ids[:3]
(True, ('G-CEASE', 'G-ATTORNEY', 'G-DECEASED'))
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from rules.policy import Policy

Expr = dict[str, Any]

NO_CONVERSATION = 9999

USECASE_FACT_DEFAULTS: dict[str, Any] = {
    "trigger": "",
    "active_account": True,
    "balance_c": 0,
    "statement_due_c": 0,
    "age_days": -1,
    "days_since_statement": -1,
    "plan_active": False,
    "plan_missed": 0,
    "short_pay_c": 0,
    "assistance_status": "none",
    "propensity": 0.5,
    "dispute_open": False,
}
"""Every field of a use-case fact, with a neutral value. Unknown ages are -1 (no ``>=`` threshold
matches them)."""

GATE_FACT_DEFAULTS: dict[str, Any] = {
    "kind": "",
    "slot": "",
    "audience": "patient",
    "channel": "email",
    "collection": False,
    "cease": False,
    "attorney": False,
    "deceased": False,
    "bankruptcy": False,
    "dispute_open": False,
    "ever_disputed": False,
    "channel_status": "preferred",
    "sms_revoked": False,
    "quiet_exempt": False,
    "quiet_outside": False,
    "quiet_no_window": False,
    "calls_peak": 0,
    "days_since_conversation": NO_CONVERSATION,
    "sms_peak": 0,
    "email_peak": 0,
    "state": "",
    "state_peak": 0,
    "past_expiry": False,
    "regime": "first_party",
    "validation_sent": False,
    "guarantor_is_patient": True,
    "confidential": False,
    "balance_c": 0,
    "owed_c": 0,
    "active_account": True,
    "propensity": 0.5,
}
"""Every field of a gate fact, with a neutral value (nothing stops, nothing is counted).
``days_since_conversation`` is `NO_CONVERSATION` when there was none."""

USECASE_FACTS: dict[str, type] = {name: type(value) for name, value in USECASE_FACT_DEFAULTS.items()}
GATE_FACTS: dict[str, type] = {name: type(value) for name, value in GATE_FACT_DEFAULTS.items()}


# -- a tiny expression DSL over the durable-rules JSON form -----------------------------------------


def eq(field: str, value: Any) -> Expr:
    return {field: value}


def ne(field: str, value: Any) -> Expr:
    return {"$neq": {field: value}}


def gt(field: str, value: Any) -> Expr:
    return {"$gt": {field: value}}


def gte(field: str, value: Any) -> Expr:
    return {"$gte": {field: value}}


def lt(field: str, value: Any) -> Expr:
    return {"$lt": {field: value}}


def lte(field: str, value: Any) -> Expr:
    return {"$lte": {field: value}}


def all_of(*parts: Expr) -> Expr:
    kept = [part for part in parts if part]  # an empty part (see `none_of`) constrains nothing
    return kept[0] if len(kept) == 1 else {"$and": kept}


def any_of(*parts: Expr) -> Expr:
    return parts[0] if len(parts) == 1 else {"$or": list(parts)}


def one_of(field: str, values: Iterable[Any]) -> Expr:
    choices = list(dict.fromkeys(values))
    if not choices:
        return eq(field, "\x00never")  # an empty list in the policy matches nothing
    return any_of(*(eq(field, value) for value in choices))


def none_of(field: str, values: Iterable[Any]) -> Expr:
    """Not any of ``values``; an empty list gives the empty part, which `all_of` drops."""
    choices = list(dict.fromkeys(values))
    return all_of(*(ne(field, value) for value in choices)) if choices else {}


def cents(amount: Decimal) -> int:
    """Money as integer cents: the engine compares exactly."""
    return int((amount * 100).to_integral_value())


# -- compiled rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """One rule: its durable-rules name, the gate (or use case) it belongs to and what firing means."""

    name: str
    gate: str
    outcome: str
    condition: Expr
    detail: str = ""
    reason: str | None = None
    """The review reason code a ``review`` outcome adds (``R-REVIEW-BALANCE`` ...)."""


@dataclass(frozen=True)
class CompiledRuleset:
    name: str
    rules: tuple[RuleSpec, ...]
    gate_ids: tuple[str, ...]
    """Every gate (or use case) in explanation order, including those whose rules rarely fire."""
    facts: dict[str, type]

    def definition(self) -> dict[str, Any]:
        """The durable-rules JSON ruleset (a fresh dict: ``Ruleset.__init__`` mutates what it is given)."""
        return {rule.name: {"all": [{"m": rule.condition}], "run": rule.name} for rule in self.rules}

    def to_json(self) -> str:
        """The ruleset as durable-rules JSON text, e.g. for review next to the policy file."""
        return json.dumps({self.name: self.definition()}, indent=2, sort_keys=True)

    def spec(self, name: str) -> RuleSpec:
        return self.by_name[name]

    @cached_property
    def by_name(self) -> dict[str, RuleSpec]:
        return {rule.name: rule for rule in self.rules}

    @cached_property
    def by_gate(self) -> dict[str, tuple[RuleSpec, ...]]:
        """Each gate's rules, in gate order."""
        return {gate: tuple(rule for rule in self.rules if rule.gate == gate) for gate in self.gate_ids}


def _ruleset(name: str, rules: list[RuleSpec], facts: dict[str, type]) -> CompiledRuleset:
    names = [rule.name for rule in rules]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate rule names in {name}: {sorted(duplicates)}")
    gate_ids = tuple(dict.fromkeys(rule.gate for rule in rules))
    return CompiledRuleset(name=name, rules=tuple(rules), gate_ids=gate_ids, facts=facts)


# -- use cases (POLICY.md section 1) ----------------------------------------------------------------


def compile_usecases(policy: Policy) -> CompiledRuleset:
    """The trigger thresholds of every use case."""
    uc = policy.use_cases
    active = eq("active_account", True)
    no_plan = eq("plan_active", False)
    collections_base = all_of(
        one_of("trigger", uc.collections.triggers),
        active,
        gt("balance_c", 0),
        gte("days_since_statement", uc.collections.min_days_since_statement),
        no_plan,
    )
    reminder_max = cents(uc.collections.reminder_max_balance)
    min_p = uc.collections.reminder_min_propensity
    rules = [
        RuleSpec(
            "UC-STATEMENT",
            "UC-STATEMENT",
            "triggered",
            all_of(
                eq("trigger", "statement"),
                gte("statement_due_c", cents(uc.statement_message.min_balance_due)),
            ),
            "statement generated with a balance due",
        ),
        RuleSpec(
            "UC-PLAN-OFFER",
            "UC-PLAN-OFFER",
            "triggered",
            all_of(
                one_of("trigger", uc.payment_plan.triggers),
                active,
                gte("balance_c", cents(uc.payment_plan.min_balance)),
                gte("age_days", uc.payment_plan.min_age_days),
                no_plan,
            ),
            f"balance >= {uc.payment_plan.min_balance}, "
            f"oldest unpaid >= {uc.payment_plan.min_age_days} days, "
            "no active plan",
        ),
        RuleSpec(
            "UC-COLLECTIONS.reminder",
            "UC-COLLECTIONS",
            "reminder",
            all_of(collections_base, lte("balance_c", reminder_max), gte("propensity", min_p)),
            f"balance <= {uc.collections.reminder_max_balance} and propensity >= {min_p}: digital reminder",
        ),
        RuleSpec(
            "UC-COLLECTIONS.call",
            "UC-COLLECTIONS",
            "staff_call",
            all_of(collections_base, any_of(gt("balance_c", reminder_max), lt("propensity", min_p))),
            f"balance > {uc.collections.reminder_max_balance} or propensity < {min_p}: staff call",
        ),
        RuleSpec(
            "UC-ASSISTANCE",
            "UC-ASSISTANCE",
            "triggered",
            all_of(
                one_of("trigger", uc.assistance.triggers),
                active,
                gt("balance_c", 0),
                any_of(
                    gte("balance_c", cents(uc.assistance.min_balance)),
                    gte("age_days", uc.assistance.min_days_delinquent),
                ),
                none_of("assistance_status", uc.assistance.skip_statuses),
            ),
            f"balance >= {uc.assistance.min_balance} "
            f"or >= {uc.assistance.min_days_delinquent} days delinquent",
        ),
        RuleSpec(
            "UC-SETTLEMENT",
            "UC-SETTLEMENT",
            "triggered",
            all_of(
                one_of("trigger", uc.settlement.triggers),
                active,
                gte("age_days", uc.settlement.min_age_days),
                gte("balance_c", cents(uc.settlement.min_balance)),
                no_plan,
                eq("dispute_open", False),
            ),
            f"oldest unpaid >= {uc.settlement.min_age_days} days, balance >= {uc.settlement.min_balance}",
        ),
        RuleSpec(
            "UC-SHORT-PAY",
            "UC-SHORT-PAY",
            "triggered",
            all_of(eq("trigger", "payment"), gt("short_pay_c", cents(uc.short_pay.min_variance))),
            f"payment short of the expected amount by more than {uc.short_pay.min_variance}",
        ),
        RuleSpec(
            "UC-BAD-DEBT",
            "UC-BAD-DEBT",
            "triggered",
            all_of(
                one_of("trigger", uc.bad_debt.triggers),
                active,
                gt("balance_c", 0),
                gte("age_days", uc.bad_debt.min_age_days),
                lte("age_days", uc.bad_debt.max_age_days),
                lt("propensity", uc.bad_debt.max_propensity),
            ),
            f"{uc.bad_debt.min_age_days}-{uc.bad_debt.max_age_days} days outstanding, "
            f"propensity < {uc.bad_debt.max_propensity}",
        ),
        RuleSpec(
            "UC-PLAN-DEFAULT.reminder",
            "UC-PLAN-DEFAULT",
            "reminder",
            all_of(
                eq("trigger", "plan"),
                gte("plan_missed", uc.plan_default.reminder_min_missed),
                lt("plan_missed", uc.plan_default.staff_task_min_missed),
            ),
            f"{uc.plan_default.reminder_min_missed}+ missed plan payment",
        ),
        RuleSpec(
            "UC-PLAN-DEFAULT.call",
            "UC-PLAN-DEFAULT",
            "staff_call",
            all_of(eq("trigger", "plan"), gte("plan_missed", uc.plan_default.staff_task_min_missed)),
            f"{uc.plan_default.staff_task_min_missed}+ missed plan payments",
        ),
    ]
    return _ruleset("usecases", rules, USECASE_FACTS)


# -- gates (POLICY.md sections 2 and 3) ------------------------------------------------------------


def _timing(gate: str, violated: list[Expr], detail: str) -> list[RuleSpec]:
    """A timing gate delays to the first allowed instant, or suppresses when that passes expires_at."""
    return [
        RuleSpec(f"{gate}.delay", gate, "delay", all_of(*violated, eq("past_expiry", False)), detail),
        RuleSpec(
            f"{gate}.suppress",
            gate,
            "suppress",
            all_of(*violated, eq("past_expiry", True)),
            f"{detail}; the first allowed time passes expires_at",
        ),
    ]


def compile_gates(policy: Policy) -> CompiledRuleset:
    """Every compliance gate and review rule, with the policy's thresholds."""
    patient = eq("audience", "patient")
    review = policy.review
    freq = policy.frequency
    limit_c = cents(review.balance_over)
    lane = review.automated_lane
    not_lane = [gt("balance_c", cents(lane.max_balance)), lt("propensity", lane.min_propensity)]
    if lane.no_dispute_ever:
        not_lane.append(eq("ever_disputed", True))
    rules = [
        RuleSpec("G-CEASE", "G-CEASE", "suppress", all_of(patient, eq("cease", True)), "cease communication"),
        RuleSpec(
            "G-ATTORNEY",
            "G-ATTORNEY",
            "suppress",
            all_of(patient, eq("attorney", True)),
            "attorney represented: contact the attorney only",
        ),
        RuleSpec(
            "G-DECEASED",
            "G-DECEASED",
            "suppress",
            all_of(patient, eq("deceased", True)),
            "deceased: no patient outreach; route to the estate",
        ),
        RuleSpec(
            "G-BANKRUPTCY",
            "G-BANKRUPTCY",
            "suppress",
            all_of(any_of(patient, eq("collection", True)), eq("bankruptcy", True)),
            "bankruptcy: no collection activity",
        ),
        RuleSpec(
            "G-NOTHING-OWED",
            "G-NOTHING-OWED",
            "suppress",
            all_of(eq("collection", True), any_of(lte("owed_c", 0), eq("active_account", False))),
            "nothing owed, or the account is closed or written off: no collection",
        ),
        RuleSpec(
            "G-DISPUTE.suppress",
            "G-DISPUTE",
            "suppress",
            all_of(eq("dispute_open", True), one_of("slot", policy.dispute.suppress_slots)),
            "open dispute: collection paused",
        ),
        RuleSpec(
            "G-DISPUTE.review",
            "G-DISPUTE",
            "review",
            all_of(eq("dispute_open", True), one_of("slot", policy.dispute.review_slots)),
            "open dispute: a person reviews service messages",
            reason="R-DISPUTE-OPEN",
        ),
        RuleSpec(
            "G-CONSENT.fallback",
            "G-CONSENT",
            "fallback",
            all_of(patient, eq("channel_status", "fallback")),
            "preferred channel not permitted: next permitted channel",
        ),
        RuleSpec(
            "G-CONSENT.none",
            "G-CONSENT",
            "staff_task",
            all_of(patient, eq("channel_status", "none"), ne("kind", "staff_task")),
            "no permitted channel: a staff task instead",
        ),
        RuleSpec(
            "G-CONSENT.no_call",
            "G-CONSENT",
            "suppress",
            all_of(patient, eq("channel_status", "none"), eq("kind", "staff_task")),
            "no number the patient lets us call",
        ),
        RuleSpec(
            "G-OPT-OUT",
            "G-OPT-OUT",
            "suppress",
            all_of(eq("channel", "sms"), eq("sms_revoked", True)),
            "SMS consent revoked by an opt-out reply",
        ),
        *_timing(
            "G-QUIET-HOURS",
            [patient, eq("quiet_exempt", False), eq("quiet_outside", True)],
            f"outside {policy.quiet_hours.start:%H:%M}-{policy.quiet_hours.end:%H:%M} in a candidate zone",
        ),
        RuleSpec(
            "G-QUIET-HOURS.no_window",
            "G-QUIET-HOURS",
            "suppress",
            all_of(patient, eq("quiet_exempt", False), eq("quiet_no_window", True)),
            "the candidate zones share no allowed hour",
        ),
        *_timing(
            "G-CALL-FREQ",
            [patient, eq("channel", "phone"), gte("calls_peak", freq.calls.max_in_window)],
            f"{freq.calls.max_in_window} calls in {freq.window_days} calendar days",
        ),
        *_timing(
            "G-CALL-PAUSE",
            [
                patient,
                eq("channel", "phone"),
                gte("days_since_conversation", 0),
                lt("days_since_conversation", freq.calls.pause_after_conversation_days),
            ],
            f"a conversation in the last {freq.calls.pause_after_conversation_days} days (its day is day 1)",
        ),
        *_timing(
            "G-SMS-FREQ",
            [patient, eq("channel", "sms"), gte("sms_peak", freq.sms.max_in_window)],
            f"{freq.sms.max_in_window} SMS in {freq.window_days} calendar days",
        ),
        *_timing(
            "G-EMAIL-FREQ",
            [patient, eq("channel", "email"), gte("email_peak", freq.email.max_in_window)],
            f"{freq.email.max_in_window} emails in {freq.window_days} calendar days",
        ),
    ]
    for state, cap in sorted(policy.state_caps.items()):
        rules += _timing(
            f"G-STATE-{state}",
            [
                patient,
                eq("state", state),
                one_of("channel", cap.channels),
                gte("state_peak", cap.max_in_window),
            ],
            f"{state}: {cap.max_in_window} {'/'.join(cap.channels)} contacts in {cap.window_days} days",
        )
    third = eq("regime", "third_party")
    rules += [
        RuleSpec(
            "G-THIRD-PARTY.disclose",
            "G-THIRD-PARTY",
            "disclose",
            all_of(patient, third, eq("validation_sent", True)),
            f"debt collector: {policy.third_party.disclosure}",
        ),
        RuleSpec(
            "G-THIRD-PARTY.validation",
            "G-THIRD-PARTY",
            "review",
            all_of(patient, third, eq("validation_sent", False)),
            f"first communication: {policy.third_party.validation_disclosure} (review)",
            reason="R-REVIEW-VALIDATION" if review.third_party_without_validation else None,
        ),
    ]
    if review.guarantor_confidential:
        rules.append(
            RuleSpec(
                "G-GUARANTOR",
                "G-GUARANTOR",
                "review",
                all_of(patient, eq("guarantor_is_patient", False), eq("confidential", True)),
                "guarantor is not the patient, who asked for confidential communications",
                reason="R-REVIEW-GUARANTOR",
            )
        )
    flags = {"deceased": "deceased", "bankruptcy": "bankruptcy", "attorney_represented": "attorney"}
    staff_flags = [eq(flags[flag], True) for flag in review.staff_task_flags]
    kind_review = [one_of("kind", review.always_kinds)]
    if staff_flags:
        kind_review.append(all_of(eq("kind", "staff_task"), any_of(*staff_flags)))
    rules += [
        RuleSpec(
            "R-REVIEW-KIND",
            "R-REVIEW-KIND",
            "review",
            any_of(*kind_review),
            "always reviewed: " + ", ".join(review.always_kinds),
            reason="R-REVIEW-KIND",
        ),
        RuleSpec(
            "R-REVIEW-BALANCE",
            "R-REVIEW-BALANCE",
            "review",
            gt("balance_c", limit_c),
            f"balance over {review.balance_over}",
            reason="R-REVIEW-BALANCE",
        ),
    ]
    if review.ever_disputed:
        rules.append(
            RuleSpec(
                "R-REVIEW-DISPUTE",
                "R-REVIEW-DISPUTE",
                "review",
                eq("ever_disputed", True),
                "the account has had a dispute",
                reason="R-REVIEW-DISPUTE",
            )
        )
    rules += [
        RuleSpec(
            "R-REVIEW-LANE",
            "R-REVIEW-LANE",
            "review",
            all_of(patient, none_of("kind", review.lane_exempt_kinds), any_of(*not_lane)),
            f"not in the automated lane (balance <= {lane.max_balance}, propensity >= {lane.min_propensity}"
            + (", no dispute ever)" if lane.no_dispute_ever else ")"),
            reason="R-REVIEW-LANE",
        ),
        RuleSpec(
            "R-APPROVER",
            "R-APPROVER",
            "restrict",
            any_of(gt("balance_c", limit_c), one_of("kind", review.restricted_kinds)),
            "approval only by " + ", ".join(review.approver_roles.restricted),
        ),
    ]
    return _ruleset("gates", rules, GATE_FACTS)
