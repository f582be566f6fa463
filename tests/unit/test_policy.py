"""The policy file: every POLICY.md parameter, validated with clear errors, selectable by BILLWISE_POLICY."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.policy import DEFAULT_POLICY_PATH, PolicyError, load_policy, parse_policy


def default_document() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_POLICY_PATH.read_text())


def test_default_policy_holds_every_parameter_of_policy_md() -> None:
    p = load_policy()
    uc = p.use_cases
    assert p.version
    assert uc.statement_message.min_balance_due == Decimal("0.01")
    assert uc.statement_message.recent_payment_days == 30
    assert (uc.payment_plan.min_balance, uc.payment_plan.min_age_days) == (Decimal("100.00"), 60)
    assert uc.payment_plan.terms_months == (3, 6, 12)
    assert uc.payment_plan.min_monthly == Decimal("25.00")
    assert uc.payment_plan.max_options == 3
    assert 7 <= uc.payment_plan.first_due_after_days <= 30
    assert uc.payment_plan.tila_disclosure_over_installments == 4
    assert uc.collections.min_days_since_statement == 30
    assert (uc.collections.reminder_max_balance, uc.collections.reminder_min_propensity) == (
        Decimal("500.00"),
        0.6,
    )
    assert (uc.assistance.min_balance, uc.assistance.min_days_delinquent) == (Decimal("1000.00"), 90)
    assert set(uc.assistance.skip_statuses) == {"applied", "approved", "denied"}
    assert [(g.year, g.base, g.per_additional_person) for g in uc.assistance.guidelines] == [
        (2025, Decimal("15650.00"), Decimal("5500.00")),
        (2026, Decimal("15960.00"), Decimal("5680.00")),
    ]
    assert uc.assistance.free_up_to_fpl_pct == 200 and uc.assistance.sliding.up_to_fpl_pct == 400
    assert uc.assistance.state_floors["WA"][0].up_to_fpl_pct == 300
    assert (uc.settlement.min_age_days, uc.settlement.min_balance) == (120, Decimal("1000.00"))
    assert (uc.settlement.floor_pct, uc.settlement.valid_days) == (70, 30)
    assert uc.short_pay.min_variance == Decimal("1.00")
    assert (uc.bad_debt.min_age_days, uc.bad_debt.max_age_days, uc.bad_debt.max_propensity) == (60, 90, 0.2)
    assert (uc.plan_default.reminder_min_missed, uc.plan_default.staff_task_min_missed) == (1, 2)
    assert p.review.balance_over == Decimal("5000.00")
    assert set(p.review.always_kinds) == {"settlement_offer", "assistance_invite"}
    assert set(p.review.approver_roles.restricted) == {"billing_manager", "compliance_officer"}
    assert p.channels.fallback_order == ("email", "portal", "sms", "letter")
    assert {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT"} == set(
        p.opt_out.keywords
    )
    assert (p.quiet_hours.start, p.quiet_hours.end) == (time(8), time(21))
    assert p.quiet_hours.exempt_channels == ("letter",)
    assert (p.frequency.window_days, p.frequency.calls.max_in_window) == (7, 7)
    assert p.frequency.calls.pause_after_conversation_days == 7
    assert (p.frequency.sms.max_in_window, p.frequency.email.max_in_window) == (3, 3)
    assert p.state_caps["MA"].max_in_window == 2 and set(p.state_caps["MA"].channels) == {"phone", "sms"}
    assert p.actions.expires_after_days == 14
    assert p.scores.prior_propensity == 0.5


def test_poverty_line_follows_the_guideline_in_force() -> None:
    assistance = load_policy().use_cases.assistance
    assert assistance.poverty_line(4, date(2025, 6, 1)) == Decimal("32150.00")  # FA-01
    assert assistance.poverty_line(4, date(2026, 2, 1)) == Decimal("33000.00")  # FA-02
    assert assistance.poverty_line(1, date(2026, 1, 12)) == Decimal("15650.00")  # the day before 2026 applies


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("use_cases", "settlement", "offer_pct"), 60, "offer_pct 60 is below floor_pct 70"),
        (("quiet_hours", "start"), "22:00", "must be before end"),
        (("quiet_hours", "default_timezone"), "Mars/Olympus", "unknown IANA time zone"),
        (
            ("use_cases", "payment_plan", "first_due_after_days"),
            45,
            "use_cases.payment_plan.first_due_after_days",
        ),
        (("channels", "fallback_order"), ["email", "fax"], "channels.fallback_order.1"),
        (("review", "approver_roles", "restricted"), ["janitor"], "review.approver_roles.restricted.0"),
        (
            ("state_caps", "Massachusetts"),
            {"max_in_window": 2, "window_days": 7, "channels": ["sms"]},
            "state_caps",
        ),
        (("use_cases", "bad_debt", "max_age_days"), 30, "max_age_days must not be below min_age_days"),
    ],
)
def test_invalid_values_name_the_field_and_the_reason(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    document = default_document()
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, "test")
    assert message in str(raised.value)


def test_unknown_and_missing_keys_are_errors() -> None:
    document = default_document()
    document["frequency"]["calls"]["max_per_week"] = 5
    del document["opt_out"]
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, "test")
    text = str(raised.value)
    assert "frequency.calls.max_per_week: Extra inputs are not permitted" in text
    assert "opt_out: Field required" in text


def test_unreadable_or_malformed_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(scalar)


def test_billwise_policy_selects_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = default_document()
    document["version"] = "practice-7"
    document["frequency"]["sms"]["max_in_window"] = 1
    other = tmp_path / "practice.yaml"
    other.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("BILLWISE_POLICY", str(other))
    chosen = load_policy()
    assert chosen.version == "practice-7" and chosen.frequency.sms.max_in_window == 1
    assert chosen.fingerprint != load_policy(DEFAULT_POLICY_PATH).fingerprint
