"""One drafting path for the worker and the offline CLI: the model with guardrails, or the template.

`Drafter.draft` tokenises identity, builds the prompt, asks the model for JSON, validates it, restores
identity, appends the approved disclosures and runs every output gate (`inference.guardrails`). Any
failure, at any step, gives the approved template and a ``fallback_reason`` for the ``draft_fallback``
audit record. It never raises and never waits beyond ``timeout_s``.

Fallback reasons: ``disabled`` (no model configured), ``timeout``, ``unavailable``, ``server_error``,
``overloaded``, ``client_error``, ``circuit_open``, ``invalid_response``, ``truncated``,
``invalid_json``, ``schema_mismatch``, ``internal_error``, and every guardrail code
(`inference.guardrails.REASON_PRIORITY`: ``threat``, ``false_urgency``, ``unknown_amount``, ...).

>>> import asyncio
>>> from decimal import Decimal
>>> from inference.facts import DraftFacts
>>> outcome = asyncio.run(Drafter(None).draft(DraftFacts(kind="payment_reminder", channel="email",
...                                                   balance=Decimal("80"))))
>>> outcome.fallback_reason, outcome.message.source, outcome.message.template_id
('disabled', 'template', 'payment_reminder.email.en.v1')
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference import metrics
from inference.client import CircuitBreaker, VllmClient, VllmError
from inference.facts import DraftFacts
from inference.guardrails import check_message, primary_reason
from inference.prompts import DraftJson, build_messages, response_format
from inference.templates import finish_body, finish_sms, render_template
from inference.tokeniser import PhiTokeniser
from schemas.actions import Message

log = logging.getLogger("billwise.inference.drafting")

DEFAULT_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"


class DraftOutcome(BaseModel):
    """The words for an action, and why the model draft was not used (None when it was)."""

    model_config = ConfigDict(frozen=True)

    message: Message
    fallback_reason: str | None = None
    violations: tuple[str, ...] = ()
    """Guardrail codes the rejected model draft failed (empty unless the reason is a guardrail)."""


class DraftingSettings(BaseSettings):
    """Drafting configuration from the environment (``VLLM_BASE_URL`` unset or empty → templates)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    vllm_base_url: str | None = None
    vllm_model: str = DEFAULT_MODEL
    vllm_timeout_s: float = 3.0
    vllm_api_key: SecretStr | None = None
    vllm_max_in_flight: int = 16
    vllm_max_tokens: int = 512
    vllm_temperature: float = 0.2
    vllm_breaker_failures: int = 5
    vllm_breaker_reset_s: float = 30.0


class Drafter:
    """Drafts the words of an action; share one per process.

    ``client`` None (``VLLM_BASE_URL`` unset) → approved templates only, reason ``disabled``.
    ``timeout_s`` is the hard deadline of one draft, queueing for a request slot included.
    """

    def __init__(
        self,
        client: VllmClient | None,
        *,
        timeout_s: float = 3.0,
        max_tokens: int = 512,
        temperature: float = 0.2,
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature

    @classmethod
    def from_env(cls) -> Drafter:
        """A drafter configured by ``VLLM_BASE_URL``, ``VLLM_MODEL``, ``VLLM_TIMEOUT_S``,
        ``VLLM_API_KEY`` (and ``VLLM_MAX_IN_FLIGHT``, ``VLLM_MAX_TOKENS``, ``VLLM_TEMPERATURE``,
        ``VLLM_BREAKER_FAILURES``, ``VLLM_BREAKER_RESET_S``)."""
        settings = DraftingSettings()
        if not (settings.vllm_base_url or "").strip():
            return cls(None, timeout_s=settings.vllm_timeout_s)
        client = VllmClient(
            str(settings.vllm_base_url),
            settings.vllm_model,
            timeout_s=settings.vllm_timeout_s,
            api_key=settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None,
            max_in_flight=settings.vllm_max_in_flight,
            breaker=CircuitBreaker(settings.vllm_breaker_failures, settings.vllm_breaker_reset_s),
        )
        return cls(
            client,
            timeout_s=settings.vllm_timeout_s,
            max_tokens=settings.vllm_max_tokens,
            temperature=settings.vllm_temperature,
        )

    @property
    def enabled(self) -> bool:
        """Whether a model is configured."""
        return self.client is not None

    async def aclose(self) -> None:
        """Close the model client's connections (call on worker shutdown)."""
        if self.client is not None:
            await self.client.aclose()

    async def draft(self, facts: DraftFacts) -> DraftOutcome:
        """The model's draft if it passes every gate, else the approved template with the reason."""
        started = time.perf_counter()
        outcome: DraftOutcome | None = None
        reason: str
        violations: tuple[str, ...] = ()
        if self.client is None:
            reason = "disabled"
        else:
            try:
                async with asyncio.timeout(self.timeout_s):
                    outcome = await self._model_draft(self.client, facts)
            except TimeoutError:
                reason = "timeout"
            except VllmError as exc:
                reason = exc.reason
            except _Rejected as exc:
                reason, violations = exc.reason, exc.violations
            except Exception as exc:  # never raise into the stream: any bug here falls back too
                # Only the type: an exception's text may quote the draft (patient data).
                log.error("drafting failed unexpectedly (kind=%s): %s", facts.kind, type(exc).__name__)
                reason = "internal_error"
        if outcome is None:
            outcome = DraftOutcome(
                message=render_template(facts), fallback_reason=reason, violations=violations
            )
            metrics.DRAFT_FALLBACKS.labels(reason).inc()
            if reason != "disabled":
                log.info(
                    "draft fallback kind=%s channel=%s reason=%s violations=%s",
                    facts.kind,
                    facts.channel,
                    reason,
                    ",".join(violations),
                )
        metrics.DRAFT_LATENCY.labels(outcome.message.source).observe(time.perf_counter() - started)
        return outcome

    async def draft_many(self, many: Sequence[DraftFacts]) -> list[DraftOutcome]:
        """Draft several actions concurrently (bounded by the client's in-flight cap), in order."""
        return list(await asyncio.gather(*(self.draft(facts) for facts in many)))

    async def _model_draft(self, client: VllmClient, facts: DraftFacts) -> DraftOutcome:
        tokeniser = PhiTokeniser()
        messages = build_messages(facts, tokeniser)
        result = await client.chat_json(
            messages, response_format(), max_tokens=self.max_tokens, temperature=self.temperature
        )
        if result.finish_reason == "length":
            raise _Rejected("truncated")
        try:
            raw = json.loads(result.content)
        except ValueError:
            raise _Rejected("invalid_json") from None
        try:
            drafted = DraftJson.model_validate(raw)
        except ValidationError:
            raise _Rejected("schema_mismatch") from None
        message = compose_message(drafted, facts, tokeniser, model=result.model)
        found = check_message(message, facts)
        if found:
            reason = primary_reason(found) or found[0].code
            raise _Rejected(reason, tuple(dict.fromkeys(v.code for v in found)))
        return DraftOutcome(message=message, fallback_reason=None)


def compose_message(drafted: DraftJson, facts: DraftFacts, tokeniser: PhiTokeniser, *, model: str) -> Message:
    """The model's words for the facts' channel, identity restored, approved disclosures appended."""
    if facts.channel == "sms":
        body, codes = finish_sms(tokeniser.restore(drafted.sms_body), facts)
        subject: str | None = None
    else:
        body, codes = finish_body(tokeniser.restore(drafted.body), facts)
        subject = tokeniser.restore(drafted.subject).strip() or None
        if subject is None or facts.channel == "phone":
            subject = render_template(facts).subject
    return Message(
        subject=subject,
        body=body,
        language=facts.lang,
        source="llm",
        template_id=None,
        model=model,
        disclosures=codes,
    )


class _Rejected(Exception):
    """A model answer that may not be used."""

    def __init__(self, reason: str, violations: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.violations = violations
