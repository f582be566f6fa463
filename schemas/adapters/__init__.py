"""Platform adapters: pure functions from a platform's native payload to canonical events.

`adapt` takes the bytes a platform (or its connector) delivered and returns contract-valid canonical
events (`schemas.events` models built through `parse_event`), or raises `AdapterError` naming the
offending native field. It never raises anything else, so a caller can dead-letter on `AdapterError`
alone. One module per platform documents what it reads and derives:

- `schemas.adapters.drchrono`: DrChrono webhook deliveries and REST objects (JSON);
- `schemas.adapters.tebra`: Tebra (Kareo) SOAP results (XML);
- `schemas.adapters.advancedmd`: AdvancedMD Connect API responses (JSON form);
- `schemas.adapters.carecloud`: CareCloud v2 patients (JSON);
- `schemas.adapters.fhir`: FHIR R4 resources and Bundles (JSON);
- `schemas.adapters.x12_835`: X12 835 remittance advice (text).

`schemas.adapters.base` holds what they share, including the identifier rules.
"""

from __future__ import annotations

from datetime import datetime

from schemas.adapters import advancedmd, carecloud, drchrono, fhir, tebra, x12_835
from schemas.adapters.base import AdapterError, Context, Mapper, finish
from schemas.events import CanonicalEvent

PLATFORMS: tuple[str, ...] = ("drchrono", "tebra", "advancedmd", "carecloud", "fhir", "x12-835")
"""The platform names of ``billing.platform.<platform>`` topics and ``billwise adapt PLATFORM``."""

_MAPPERS: dict[str, Mapper] = {
    "drchrono": drchrono.map_payload,
    "tebra": tebra.map_payload,
    "advancedmd": advancedmd.map_payload,
    "carecloud": carecloud.map_payload,
    "fhir": fhir.map_payload,
    "x12-835": x12_835.map_payload,
}

MAX_PAYLOAD_BYTES = 20 * 1024 * 1024
"""Payloads above this size are refused before parsing (an 835 batch of a large practice is far less)."""


def adapt(
    platform: str,
    payload: bytes,
    *,
    source: str | None = None,
    received_at: datetime | None = None,
) -> list[CanonicalEvent]:
    """Native payload bytes (JSON, X12 text, or SOAP XML for Tebra) to validated canonical events.

    ``source`` overrides the CloudEvents source (default ``"<platform>/practice-<id>"``);
    ``received_at`` (timezone-aware) is the time of events whose native record has no timestamp.
    Raises `AdapterError` with the path of the offending native field; never anything else.
    """
    if platform not in _MAPPERS:
        raise AdapterError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise AdapterError(f"payload must be bytes, not {type(payload).__name__}")
    if received_at is not None and (received_at.tzinfo is None or received_at.utcoffset() is None):
        raise AdapterError("received_at must be timezone-aware")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise AdapterError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    context = Context(platform=platform, source=source, received_at=received_at)
    try:
        return finish(_MAPPERS[platform](bytes(payload), context), context)
    except AdapterError:
        raise
    except RecursionError:
        raise AdapterError("payload is nested too deeply") from None
    except Exception as exc:  # the contract of adapt: nothing but AdapterError escapes
        raise AdapterError(f"{platform} payload could not be mapped ({type(exc).__name__}: {exc})") from exc


__all__ = ["PLATFORMS", "AdapterError", "adapt"]
