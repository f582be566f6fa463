"""JSON Schema export of the contract models (``billwise schema export [--check]``).

The files under ``schemas/json/`` are checked in so that platform integrators can validate their
payloads without Python; CI fails when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.actions import Action
from schemas.audit import AuditRecord
from schemas.deadletter import DeadLetter
from schemas.events import CanonicalEvent
from schemas.inputs import ActionOutcome, ReviewDecision

SCHEMA_DIR = Path(__file__).parent / "json"

CONTRACT_SCHEMAS: dict[str, Any] = {
    "canonical-event": CanonicalEvent,
    "action": Action,
    "audit-record": AuditRecord,
    "dead-letter": DeadLetter,
    "action-outcome": ActionOutcome,
    "review-decision": ReviewDecision,
}


def render_schemas() -> dict[str, str]:
    """File name to JSON Schema text for every contract record."""
    rendered = {}
    for name, model in CONTRACT_SCHEMAS.items():
        schema = TypeAdapter(model).json_schema(
            mode="serialization" if name != "canonical-event" else "validation"
        )
        schema["$id"] = f"https://billwise.dev/schemas/v1/{name}.json"
        schema.setdefault("title", name)
        rendered[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in render_schemas().items():
        path = directory / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, stale or unexpected in ``directory``."""
    expected = render_schemas()
    present = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    stale = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text(encoding="utf-8") != text
    ]
    return sorted(stale + sorted(present - expected.keys()))
