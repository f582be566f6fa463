"""Drafter decisions on model answers, with a fake client (the HTTP path is in tests/integration)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

from inference.client import ChatResult, VllmClient
from inference.drafting import Drafter
from inference.facts import DraftFacts
from inference.templates import render_template

FACTS = DraftFacts(
    kind="payment_reminder",
    channel="sms",
    practice_name="Oak Clinic",
    patient_name="Ana Ruiz",
    account_id="ACC-9",
    balance=Decimal("80"),
)


class FakeClient:
    """Answers with a draft built by ``make(placeholders)`` from the prompt's tokens."""

    def __init__(self, make: Any, finish_reason: str = "stop") -> None:
        self.make = make
        self.finish_reason = finish_reason
        self.prompts: list[str] = []

    async def chat_json(
        self, messages: list[dict[str, str]], response_format: dict[str, Any], **_: Any
    ) -> ChatResult:
        user = messages[-1]["content"]
        self.prompts.append(user)
        tokens = dict(re.findall(r'"(patient_name|account_reference)": "(\[[A-Z]+_[0-9A-F]+\])"', user))
        content = self.make(tokens)
        return ChatResult(content=content, model="fake", finish_reason=self.finish_reason)

    async def aclose(self) -> None:
        return None


def drafter(make: Any, **kw: Any) -> Drafter:
    client: VllmClient = FakeClient(make, **kw)  # type: ignore[assignment]
    return Drafter(client, timeout_s=1.0)


def draft_json(
    body: str = "Hello {name}, your balance is $80.00.",
    sms: str = "Oak Clinic: balance $80.00.",
    subject: str = "Your balance",
) -> Any:
    def make(tokens: dict[str, str]) -> str:
        name = tokens.get("patient_name", "")
        return json.dumps(
            {
                "subject": subject,
                "body": body.format(name=name),
                "sms_body": sms.format(name=name),
                "tone_tags": [],
            }
        )

    return make


async def test_good_answer_is_used_and_identity_restored() -> None:
    d = drafter(draft_json())
    outcome = await d.draft(FACTS.model_copy(update={"channel": "email"}))
    assert outcome.fallback_reason is None
    assert outcome.message.body.startswith("Hello Ana Ruiz, your balance is $80.00.")
    assert outcome.message.model == "fake"
    assert "Ana" not in d.client.prompts[0]  # type: ignore[union-attr]


async def test_opt_out_words_are_not_doubled() -> None:
    outcome = await drafter(draft_json(sms="Oak Clinic: balance $80.00. Reply STOP to opt out.")).draft(FACTS)
    assert outcome.fallback_reason is None
    assert outcome.message.body == "Oak Clinic: balance $80.00. Reply STOP to opt out"


@pytest.mark.parametrize(
    ("make", "finish", "reason"),
    [
        (draft_json(), "length", "truncated"),
        (lambda _: "not json", "stop", "invalid_json"),
        (
            lambda _: json.dumps({"subject": "s", "body": "b", "sms_body": "x", "tone_tags": ["angry"]}),
            "stop",
            "schema_mismatch",
        ),
        (
            lambda _: json.dumps({"subject": "s", "body": "b", "sms_body": "x", "tone_tags": [], "extra": 1}),
            "stop",
            "schema_mismatch",
        ),
        (draft_json(sms="Oak Clinic: hi NAME_12AB, balance $80.00."), "stop", "unresolved_token"),
        (draft_json(sms="Oak Clinic: balance $80.00 for your x-ray."), "stop", "phi_in_sms"),
        (draft_json(sms="Oak Clinic: balance $80.00, due May 5."), "stop", "unknown_date"),
    ],
)
async def test_unusable_answers_fall_back(make: Any, finish: str, reason: str) -> None:
    outcome = await drafter(make, finish_reason=finish).draft(FACTS)
    assert outcome.fallback_reason == reason
    assert outcome.message == render_template(FACTS)


async def test_clinical_subject_falls_back() -> None:
    outcome = await drafter(draft_json(subject="About your chemotherapy bill")).draft(
        FACTS.model_copy(update={"channel": "email"})
    )
    assert outcome.fallback_reason == "phi_in_subject"


async def test_all_violations_are_reported() -> None:
    outcome = await drafter(draft_json(sms="Oak Clinic: pay $99.00 immediately or we will sue.")).draft(FACTS)
    assert outcome.fallback_reason == "threat"
    assert outcome.violations == ("threat", "false_urgency", "unknown_amount")


async def test_never_raises() -> None:
    class Broken(FakeClient):
        async def chat_json(self, *args: Any, **kwargs: Any) -> ChatResult:
            raise RuntimeError("bug")

    outcome = await Drafter(Broken(None), timeout_s=1.0).draft(FACTS)  # type: ignore[arg-type]
    assert outcome.fallback_reason == "internal_error"
    assert outcome.message.source == "template"


def test_from_env_without_url_is_templates_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", "")
    monkeypatch.setenv("VLLM_TIMEOUT_S", "1.5")
    drafter = Drafter.from_env()
    assert drafter.client is None and drafter.timeout_s == 1.5


async def test_draft_many_keeps_order() -> None:
    many = [FACTS.model_copy(update={"balance": Decimal(n)}) for n in (10, 20, 30)]
    outcomes = await drafter(draft_json(sms="Oak Clinic: hello.")).draft_many(many)
    assert [o.fallback_reason for o in outcomes] == [None, None, None]
    assert len(outcomes) == 3
