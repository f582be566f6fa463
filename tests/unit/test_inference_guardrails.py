"""Output gates (POLICY.md section 3): each violation kind, in English and Spanish."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from inference.facts import DraftFacts
from inference.guardrails import Violation, check_message, money_mentions, primary_reason
from schemas.actions import Message, PlanOption

PLAN = PlanOption(
    monthly_amount=Decimal("75"), term_months=6, first_due_date=date(2026, 4, 1), total=Decimal("450")
)


def facts(channel: str = "email", language: str = "en", **kw: object) -> DraftFacts:
    values: dict[str, object] = {
        "kind": "payment_plan_offer",
        "channel": channel,
        "language": language,
        "balance": Decimal("450"),
        "insurance_pending": Decimal("120.50"),
        "due_date": date(2026, 4, 1),
        "plan_options": (PLAN,),
    }
    values.update(kw)
    return DraftFacts.model_validate(values)


OPT_OUT = {"en": "Reply STOP to opt out", "es": "Responda STOP para cancelar"}
EMAIL_OPT_OUT = {
    "en": 'To stop receiving these messages, reply "STOP" or tell us how you prefer to be contacted.',
    "es": 'Para dejar de recibir estos mensajes, responda "STOP" o díganos cómo prefiere que lo contactemos.',
}


def email(body: str, language: str = "en", subject: str = "Your account") -> Message:
    return Message(
        subject=subject, body=f"{body}\n\n{EMAIL_OPT_OUT[language]}", language=language, source="llm"
    )


def sms(body: str, language: str = "en") -> Message:
    return Message(body=f"{body} {OPT_OUT[language]}", language=language, source="llm")


def codes(violations: list[Violation]) -> list[str]:
    return [v.code for v in violations]


@pytest.mark.parametrize("language", ["en", "es"])
def test_clean_drafts_pass(language: str) -> None:
    f = facts(language=language)
    text = {
        "en": "Your balance is $450.00; pay $75.00 a month for 6 months (total $450) from April 1, 2026.",
        "es": "Su saldo es de $450.00; pague $75.00 al mes durante 6 meses desde el 1 de abril de 2026.",
    }[language]
    assert check_message(email(text, language), f) == []
    assert (
        check_message(sms("Oak Clinic: balance $450.00, due Apr 1.", language), facts("sms", language)) == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "Your balance is $451.00.",
        "Pay 99.99 today.",
        "Su saldo es de 460 dólares.",
        "Su saldo es de $1.234,50.",  # European-style separators are not the known amount either
    ],
)
def test_unknown_amount(text: str) -> None:
    assert "unknown_amount" in codes(check_message(email(text), facts()))


def test_known_amount_in_other_spellings_is_accepted() -> None:
    assert [v for _, v in money_mentions("$450 or 450.00 dollars or USD 120.50")] == [
        Decimal("450.00"),
        Decimal("450.00"),
        Decimal("120.50"),
    ]
    assert check_message(email("$450 or 450.00 dollars or USD 120.50; 0% APR"), facts()) == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("If you do not pay we will take legal action.", "en"),
        ("We may sue you for the balance.", "en"),
        ("Your wages could be garnished.", "en"),
        ("We will report this to the credit bureaus.", "en"),
        ("Your account will be sent to a collection agency.", "en"),
        ("Failure to pay may lead to arrest.", "en"),
        ("Si no paga, tomaremos acciones legales.", "es"),
        ("Podemos embargar su salario.", "es"),
        ("Lo reportaremos al buró de crédito.", "es"),
        ("Su cuenta pasará a una agencia de cobranza.", "es"),
        ("Podríamos presentar una demanda en el tribunal.", "es"),
    ],
)
def test_threat(text: str, language: str) -> None:
    assert codes(check_message(email(text, language), facts(language=language)))[0] == "threat"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("FINAL NOTICE: your balance is $450.00.", "en"),
        ("Please pay immediately.", "en"),
        ("Act now, this is your last chance.", "en"),
        ("Pay within 24 hours.", "en"),
        ("Último aviso: su saldo es de $450.00.", "es"),
        ("Pague de inmediato.", "es"),
        ("Es urgente, actúe ahora.", "es"),
    ],
)
def test_false_urgency(text: str, language: str) -> None:
    assert "false_urgency" in codes(check_message(email(text, language), facts(language=language)))


@pytest.mark.parametrize("language", ["en", "es"])
def test_sms_shape(language: str) -> None:
    f = facts("sms", language)
    long = Message(body="x" * 320 + " " + OPT_OUT[language], language=language, source="llm")
    assert "sms_shape" in codes(check_message(long, f))
    no_opt_out = Message(body="Oak Clinic: balance $450.00.", language=language, source="llm")
    assert "sms_shape" in codes(check_message(no_opt_out, f))
    other_language = Message(
        body=f"Oak Clinic: balance $450.00. {OPT_OUT['es' if language == 'en' else 'en']}",
        language=language,
        source="llm",
    )
    assert "sms_shape" in codes(check_message(other_language, f))


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Your balance for the colonoscopy is $450.00.", "en"),
        ("Oncology billing: $450.00 due.", "en"),
        ("Balance for CPT 99213: $450.00.", "en"),
        ("Balance for E11.9 care: $450.00.", "en"),
        ("Su saldo por la cirugía es de $450.00.", "es"),
        ("Saldo de salud mental: $450.00.", "es"),
    ],
)
def test_phi_in_sms(text: str, language: str) -> None:
    assert "phi_in_sms" in codes(check_message(sms(text, language), facts("sms", language)))


def test_clinical_words_allowed_in_email_body_but_not_subject() -> None:
    f = facts()
    assert check_message(email("Thanks for your visit; balance $450.00."), f) == []
    assert codes(check_message(email("Balance $450.00.", subject="Your MRI bill"), f)) == ["phi_in_subject"]


@pytest.mark.parametrize("language", ["en", "es"])
def test_missing_disclosure(language: str) -> None:
    f = facts(language=language, disclosures=("tila_zero_apr", "debt_collector"))
    found = check_message(email("Balance $450.00.", language), f)
    assert [(v.code, v.detail) for v in found] == [
        ("missing_disclosure", "tila_zero_apr"),
        ("missing_disclosure", "debt_collector"),
    ]
    carried = {
        "en": "Balance $450.00. 0% APR, no fees. This communication is from a debt collector.",
        "es": "Saldo $450.00. 0% APR, sin comisiones. Esta comunicación proviene de un cobrador de deudas.",
    }[language]
    assert check_message(email(carried, language), f) == []


def test_email_needs_opt_out_words() -> None:
    message = Message(subject="Hi", body="Balance $450.00.", source="llm")
    assert [(v.code, v.detail) for v in check_message(message, facts())] == [
        ("missing_disclosure", "opt_out")
    ]


def test_letters_need_no_opt_out() -> None:
    message = Message(subject="Hi", body="Balance $450.00.", source="llm")
    assert check_message(message, facts("letter")) == []


def test_unknown_date() -> None:
    f = facts()
    assert codes(check_message(email("Pay by April 15, 2026."), f)) == ["unknown_date"]
    assert codes(
        check_message(email("Pague antes del 15 de abril de 2026.", "es"), facts(language="es"))
    ) == ["unknown_date"]
    assert check_message(email("Due 4/1/2026 or April 1."), f) == []


def test_unresolved_token_and_empty_text() -> None:
    f = facts("letter")
    assert codes(check_message(Message(subject="Hi", body="Dear [NAME_1A2B3C4D],", source="llm"), f)) == [
        "unresolved_token"
    ]
    assert codes(check_message(Message(subject="Hi", body="  ", source="llm"), f)) == ["empty_text"]


def test_primary_reason_prefers_the_most_serious() -> None:
    found = check_message(sms("We will sue for $999.00 and your biopsy, act now.", "en"), facts("sms"))
    assert codes(found)[:3] == ["threat", "false_urgency", "unknown_amount"]
    assert primary_reason(found) == "threat"
    assert primary_reason([]) is None
