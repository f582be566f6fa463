"""Approved templates: every kind × channel × language renders and passes the output gates."""

from __future__ import annotations

import itertools
import time
from datetime import date
from decimal import Decimal

import pytest

from inference.disclosures import sms_opt_out
from inference.facts import CHANNELS, KINDS, DraftFacts
from inference.guardrails import check_message
from inference.templates import SMS_MAX_CHARS, render_template
from schemas.actions import PlanOption, Settlement

PLANS = tuple(
    PlanOption(
        monthly_amount=Decimal("1150.25"),
        term_months=t,
        first_due_date=date(2026, 4, 1),
        total=Decimal("13801.50"),
    )
    for t in (3, 6, 12)
)


def full_facts(kind: str, channel: str, language: str, **overrides: object) -> DraftFacts:
    values: dict[str, object] = {
        "kind": kind,
        "channel": channel,
        "language": language,
        "practice_name": "Oak Valley Family Medicine of Northern California",
        "patient_name": "Maria de la Cruz Lopez",
        "account_id": "ACC-1001",
        "balance": Decimal("13801.50"),
        "insurance_pending": Decimal("1200"),
        "last_payment_amount": Decimal("50"),
        "last_payment_date": date(2026, 3, 1),
        "due_date": date(2026, 4, 2),
        "plan_options": PLANS,
        "settlement": Settlement(
            amount=Decimal("9661.05"), floor=Decimal("9661.05"), valid_until=date(2026, 5, 1)
        ),
        "variance": Decimal("25.10"),
    }
    values.update(overrides)
    return DraftFacts.model_validate(values)


ALL_DISCLOSURES = ("tila_zero_apr", "validation_notice", "financial_assistance", "debt_collector")
COMBOS = list(itertools.product(sorted(KINDS), sorted(CHANNELS), ["en", "es"]))


@pytest.mark.parametrize(("kind", "channel", "language"), COMBOS)
@pytest.mark.parametrize("disclosures", [(), ALL_DISCLOSURES], ids=["plain", "all-disclosures"])
def test_every_template_renders_and_passes_guardrails(
    kind: str, channel: str, language: str, disclosures: tuple[str, ...]
) -> None:
    for facts in (
        full_facts(kind, channel, language, disclosures=disclosures),
        DraftFacts(kind=kind, channel=channel, language=language, disclosures=disclosures),
    ):
        message = render_template(facts)
        assert message.source == "template"
        assert message.model is None
        assert message.language == language
        assert message.template_id == f"{kind}.{channel}.{language}.v1"
        assert message.body.strip()
        assert check_message(message, facts) == [], message.body
        for code in disclosures:
            assert code in message.disclosures
        if channel in ("email", "sms"):
            assert "opt_out" in message.disclosures
        if channel == "sms":
            assert message.subject is None
            assert len(message.body) <= SMS_MAX_CHARS
            assert message.body.endswith(sms_opt_out(language))
            assert "Maria" not in message.body  # no patient name where others may read it
        else:
            assert message.subject


def test_sms_wording_and_amount_format() -> None:
    facts = DraftFacts(
        kind="payment_reminder", channel="sms", practice_name="Oak Clinic", balance=Decimal("1234.5")
    )
    body = render_template(facts).body
    assert "$1,234.50" in body
    assert body.endswith("Reply STOP to opt out")
    es = render_template(facts.model_copy(update={"language": "es-MX"}))
    assert es.language == "es"
    assert es.body.endswith("Responda STOP para cancelar")
    assert es.template_id == "payment_reminder.sms.es.v1"


def test_unsupported_language_falls_back_to_english() -> None:
    message = render_template(DraftFacts(kind="statement_message", channel="email", language="fr"))
    assert message.language == "en"
    assert message.template_id == "statement_message.email.en.v1"


def test_practice_name_that_tells_a_specialty_is_kept_out_of_sms_and_subjects() -> None:
    facts = DraftFacts(
        kind="payment_reminder", channel="sms", practice_name="Bay Oncology Associates", balance=Decimal("80")
    )
    sms = render_template(facts)
    assert "Oncology" not in sms.body
    assert sms.body.startswith("Billing office:")
    email = render_template(facts.model_copy(update={"channel": "email"}))
    assert email.subject is not None and "Oncology" not in email.subject


def test_disclosure_wording_is_appended_once() -> None:
    facts = full_facts(
        "payment_plan_offer", "email", "es", disclosures=("debt_collector", "validation_notice")
    )
    body = render_template(facts).body
    assert body.count("Esta comunicación proviene de un cobrador de deudas.") == 1
    assert "0% APR" not in body  # TILA wording only when the decision asks for it


def test_call_script_reads_disclosures_out() -> None:
    facts = full_facts("staff_task", "phone", "en", disclosures=("debt_collector",))
    body = render_template(facts).body
    assert 'Say: "This communication is from a debt collector."' in body
    assert "opt_out" not in render_template(facts).disclosures


def test_unknown_kind_channel_or_disclosure_is_rejected_early() -> None:
    with pytest.raises(ValueError):
        DraftFacts(kind="platform_update", channel="email")
    with pytest.raises(ValueError):
        DraftFacts(kind="payment_reminder", channel="fax")
    with pytest.raises(ValueError):
        DraftFacts(kind="payment_reminder", channel="sms", disclosures=("mini_miranda_typo",))


def test_known_amounts_and_dates() -> None:
    facts = full_facts("settlement_offer", "email", "en")
    amounts = facts.known_amounts()
    assert Decimal("13801.50") in amounts and Decimal("9661.05") in amounts and Decimal("1150.25") in amounts
    assert date(2026, 5, 1) in facts.known_dates()


def test_rendering_is_fast() -> None:
    facts = full_facts("payment_plan_offer", "email", "en")
    render_template(facts)
    started = time.perf_counter()
    for _ in range(500):
        render_template(facts)
    assert time.perf_counter() - started < 1.0
