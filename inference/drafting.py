"""One drafting path for the worker and the offline CLI (interface; model path being completed)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from inference.facts import DraftFacts
from inference.templates import render_template
from schemas.actions import Message


class DraftOutcome(BaseModel):
    """The words for an action, and why the model draft was not used (None when it was)."""

    message: Message
    fallback_reason: str | None = None
    violations: tuple[str, ...] = ()


class Drafter:
    """Drafts with the model when a client is set, else (or on any failure) with the template."""

    def __init__(self, client: Any | None = None, **_: Any) -> None:
        self.client = client

    async def draft(self, facts: DraftFacts) -> DraftOutcome:
        """Never raises; without a client the template is used with reason ``disabled``."""
        return DraftOutcome(message=render_template(facts), fallback_reason="disabled")

    @classmethod
    def from_env(cls) -> Drafter:
        """Templates only until the client lands."""
        return cls(None)
