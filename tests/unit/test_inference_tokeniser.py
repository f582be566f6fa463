"""PHI tokeniser: round trip, nothing identifying in the tokenised text, random per-request tokens."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from inference.facts import DraftFacts
from inference.prompts import build_messages
from inference.tokeniser import LEFTOVER_TOKEN_RE, TOKEN_RE, PhiTokeniser

IDENTIFYING = [
    "Maria",
    "Lopez",
    "ACC-1001",
    "PT-78910",
    "1961",
    "04/12/1961",
    "415",
    "555-0123",
    "maria.lopez",
    "example.org",
    "742 Evergreen",
    "123-45-6789",
    "94110",
]

TEXT = (
    "Patient Maria Lopez (PT-78910, account ACC-1001), born 04/12/1961, lives at 742 Evergreen Terrace, "
    "Apt 3, Springfield 94110. Phone (415) 555-0123 or +14155550123, email maria.lopez@example.org, "
    "SSN 123-45-6789. MARIA asked about her balance of $450.75 due March 30, 2026."
)


def make() -> PhiTokeniser:
    tokeniser = PhiTokeniser()
    tokeniser.register("NAME", "Maria Lopez")
    tokeniser.register("ID", "ACC-1001")
    return tokeniser


def test_round_trip_restores_the_exact_text() -> None:
    tokeniser = make()
    assert tokeniser.restore(tokeniser.scrub(TEXT)) == TEXT


@pytest.mark.parametrize("fragment", IDENTIFYING)
def test_nothing_identifying_survives(fragment: str) -> None:
    # The tokens are random hex: "[ADDR_5BA4157B]" may contain "415" by chance, so look beside them.
    scrubbed = TOKEN_RE.sub("[TOKEN]", make().scrub(TEXT))
    assert fragment.lower() not in scrubbed.lower()


def test_amounts_and_plain_words_are_kept() -> None:
    scrubbed = make().scrub(TEXT)
    assert "$450.75" in scrubbed
    assert "asked about her balance" in scrubbed


def test_tokens_are_random_per_request_and_stable_within_one() -> None:
    first, second = make(), make()
    a = first.token_for("NAME", "Maria Lopez")
    assert a == first.token_for("NAME", "Maria Lopez")
    assert a != second.token_for("NAME", "Maria Lopez")
    assert TOKEN_RE.fullmatch(a)
    assert "MARIA" not in a.upper().replace("NAME", "")


def test_restore_ignores_tokens_of_another_request() -> None:
    first, second = make(), make()
    foreign = first.scrub("Maria Lopez")
    assert second.restore(foreign) == foreign


def test_leftover_detects_mangled_tokens() -> None:
    token = make().token_for("NAME", "Maria Lopez")
    assert LEFTOVER_TOKEN_RE.search(token.strip("[]"))
    assert LEFTOVER_TOKEN_RE.search("Dear NAME_1a2b")
    assert not LEFTOVER_TOKEN_RE.search("Dear Maria, your balance is $45.00")


def test_spanish_dates_and_street_names() -> None:
    tokeniser = PhiTokeniser()
    text = "Nació el 4 de diciembre de 1961 y vive en Calle Mayor 12."
    scrubbed = tokeniser.scrub(text)
    beside_tokens = TOKEN_RE.sub("[TOKEN]", scrubbed)  # a random hex token may hold "1961" by chance
    assert "1961" not in beside_tokens and "Mayor 12" not in beside_tokens
    assert tokeniser.restore(scrubbed) == text


def test_prompt_carries_no_identity() -> None:
    facts = DraftFacts(
        kind="statement_message",
        channel="email",
        practice_name="Oak Valley",
        patient_name="Maria Lopez",
        account_id="ACC-1001",
        balance=Decimal("450.75"),
        last_payment_amount=Decimal("50"),
        last_payment_date=date(2026, 3, 1),
        due_date=date(2026, 3, 30),
    )
    tokeniser = PhiTokeniser()
    text = "\n".join(m["content"] for m in build_messages(facts, tokeniser))
    for fragment in ("Maria", "Lopez", "ACC-1001", "2026-03-01", "March", "2026-03-30"):
        assert fragment not in text
    assert "$450.75" in text and "Oak Valley" in text
    tokens = set(re.findall(TOKEN_RE, text))
    assert tokens and tokens <= tokeniser.tokens
    # dates come back in the message's language
    due = next(t for t in tokens if tokeniser.restore(t) == "March 30, 2026")
    assert due.startswith("[DATE_")
