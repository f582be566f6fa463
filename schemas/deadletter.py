"""Dead-letter records: every input that could not be accepted, with its reason and its bytes."""

from __future__ import annotations

import base64
from typing import Literal

from schemas.common import OutputModel, Timestamp


class DeadLetterError(OutputModel):
    type: str
    message: str
    path: str | None = None


class DeadLetter(OutputModel):
    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    received_at: Timestamp
    error: DeadLetterError
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"


def raw_text(raw: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    """The original bytes as UTF-8 text when they are, else as base64, so nothing is lost."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"
