"""Versioned model checkpoints: bytes a restarted or rebalanced worker resumes from.

A checkpoint is a small JSON header followed by the pickled model. The header records what the bytes
need to be read back safely: the checkpoint format, the model kind, its `model_version`, the River and
Python versions that wrote it, and a SHA-256 of the pickle. River's pickles are tied to the River
version (River FAQ), so a checkpoint written by another River version is refused with
`CheckpointVersionError` rather than loaded into a model that may misbehave silently; the worker then
cold-starts (`restore`) and says so.

Checkpoints are meant for a compacted topic keyed by model kind (or a Faust table with the raw codec),
written by the worker every N labels and read once at start. Unpickling runs code: read checkpoints only
from topics the engine itself writes (faust #776, CWE-502).

>>> from models.propensity import PropensityModel
>>> model = PropensityModel()
>>> model.learn({"log_balance": 5.0}, True)
>>> blob = dumps(model, kind="propensity")
>>> header(blob)["model_version"], header(blob)["kind"]
('ptp-lr-2+1', 'propensity')
>>> restored = loads(blob, kind="propensity")
>>> restored.score({"log_balance": 5.0}) == model.score({"log_balance": 5.0})
True
>>> restore(None, PropensityModel, kind="propensity").labels  # nothing stored yet: the cold-start prior
0
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from collections.abc import Callable
from typing import Any, TypeVar

import river

__all__ = ["FORMAT", "CheckpointError", "CheckpointVersionError", "dumps", "header", "loads", "restore"]

MAGIC = b"BWCKPT"
FORMAT = 1
"""Bump when the header or layout changes; older formats are refused, never guessed."""

T = TypeVar("T")


class CheckpointError(ValueError):
    """The bytes are not a readable checkpoint (wrong magic, truncated, checksum or kind mismatch)."""


class CheckpointVersionError(CheckpointError):
    """The checkpoint was written by another River (or checkpoint format) version."""


def dumps(model: Any, *, kind: str) -> bytes:
    """The checkpoint bytes of ``model``: ``MAGIC``, header length, JSON header, pickle."""
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    head = {
        "format": FORMAT,
        "kind": kind,
        "model_version": getattr(model, "model_version", None),
        "river": river.__version__,
        "python": platform.python_version(),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
    }
    raw = json.dumps(head, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + len(raw).to_bytes(4, "big") + raw + payload


def header(blob: bytes) -> dict[str, Any]:
    """The header of a checkpoint, without unpickling anything (for audit records and logs)."""
    return _split(blob)[0]


def _split(blob: bytes) -> tuple[dict[str, Any], bytes]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise CheckpointError("not a Billwise model checkpoint")
    size = int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    try:
        head = json.loads(blob[start : start + size])
    except ValueError as exc:
        raise CheckpointError(f"unreadable checkpoint header: {exc}") from None
    if not isinstance(head, dict):
        raise CheckpointError("unreadable checkpoint header")
    return head, blob[start + size :]


def loads(blob: bytes, *, kind: str | None = None) -> Any:
    """The model in a checkpoint; refuses another format, River version or kind, or corrupt bytes."""
    head, payload = _split(blob)
    if head.get("format") != FORMAT:
        raise CheckpointVersionError(
            f"checkpoint format {head.get('format')!r}; this worker reads format {FORMAT}"
        )
    if head.get("river") != river.__version__:
        raise CheckpointVersionError(
            f"checkpoint written with river {head.get('river')}, this worker runs river {river.__version__}: "
            "River pickles are tied to the River version; cold-start or retrain instead of loading it"
        )
    if kind is not None and head.get("kind") != kind:
        raise CheckpointError(f"checkpoint holds a {head.get('kind')!r} model, not {kind!r}")
    if hashlib.sha256(payload).hexdigest() != head.get("sha256"):
        raise CheckpointError("checkpoint payload does not match its checksum (truncated or corrupted)")
    # Unpickling runs code: only checkpoints the engine wrote itself reach this line (module docstring).
    return pickle.loads(payload)


def restore(blob: bytes | None, factory: Callable[[], T], *, kind: str) -> T:
    """The checkpointed model, or a fresh one (cold start: the documented prior) when there is none.

    A version mismatch is not swallowed: it raises, so the worker logs it and decides explicitly.
    """
    if not blob:
        return factory()
    model: T = loads(blob, kind=kind)
    return model
