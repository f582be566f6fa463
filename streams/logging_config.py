"""Structured logs: one JSON object a line, with patient data redacted before it is written.

Every record becomes ``{"time", "level", "logger", "message"}`` plus, when the caller passed them with
``extra=``, the identifiers listed in `ID_FIELDS` (event, action, audit and account ids, topic,
partition, offset) and, for an exception, its type and a redacted traceback. Nothing else from the
record is written: a log line names *which* event or account, never what it says about the patient.

`PhiRedactingFilter` is the second line of defence for code that slips: it rewrites the message and
the traceback of every record that reaches the handler, replacing e-mail addresses, phone numbers,
social security numbers, the values of name-, address- and birth-date-like fields (``"family":
"Lopez"``, ``name=Maria Lopez``, ``'given': ['Maria']``) and the name after a salutation (``Dear
Maria``) with ``[redacted]``. It also removes secrets: the values of password-, token-, key- and
secret-like fields, bearer tokens and credentials in URLs. The engine itself logs ids and error class
names only; the filter makes a mistake cheap, not acceptable.

The worker gets it through Faust's (mode's) ``logging_config`` (`streams.app.faust_worker`)::

    faust.Worker(app, loglevel="info", logging_config=logging_dict_config("info"))

and anything else with `configure_logging`.

>>> redact("reminder sent to maria.lopez@example.com, +1 (213) 555-0142")
'reminder sent to [redacted], [redacted]'
>>> redact('patient {"given": ["Maria"], "family": "Lopez"} updated')
'patient {"given": [redacted], "family": [redacted]} updated'
>>> redact("Dear Maria Lopez, your balance is $120.00")
'Dear [redacted], your balance is $120.00'
>>> redact("SASL login failed for password=hunter2 on sasl_ssl://u:pw@kafka:9093")
'SASL login failed for password=[redacted] on sasl_ssl://[redacted]@kafka:9093'
>>> redact("event evt-123 for account ACC-11-000652 decided at offset 42")
'event evt-123 for account ACC-11-000652 decided at offset 42'
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ID_FIELDS",
    "REDACTED",
    "JsonFormatter",
    "PhiRedactingFilter",
    "configure_logging",
    "logging_dict_config",
    "redact",
]

REDACTED = "[redacted]"

ID_FIELDS: tuple[str, ...] = (
    "event_id",
    "action_id",
    "audit_id",
    "account_id",
    "decision_id",
    "topic",
    "partition",
    "offset",
    "platform",
    "route",
    "status",
)
"""The ``extra=`` fields a log line may carry: identifiers and positions, never patient data."""

_SENSITIVE_KEYS = (
    # names
    r"name|first_?name|last_?name|middle_?name|given|family|full_?name|patient_?name|preferred_?name"
    r"|guarantor(?:_?name)?|suffix|prefix"
    # contact and address
    r"|email|e_?mail|phone|mobile|telephone|tel|sms|line|line1|line2|street|address|city|postal_?code|zip"
    # identity
    r"|birth_?date|dob|date_?of_?birth|ssn|mrn"
    # secrets
    r"|password|passwd|pwd|secret|token|api_?key|apikey|authorization|sasl_plain_password|credentials?"
)

# "key": "value" / 'key': 'value' / "key": ["a", "b"] (JSON and Python reprs).
_QUOTED_FIELD = re.compile(
    r"""(?P<head>(?P<q>["'])(?:"""
    + _SENSITIVE_KEYS
    + r""")(?P=q)\s*:\s*)(?P<value>\[[^\]]*\]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.IGNORECASE,
)
# key=value (up to a separator) in log-style text; a quoted value may hold spaces.
_ASSIGNED_FIELD = re.compile(
    r"""(?P<head>\b(?i:"""
    + _SENSITIVE_KEYS
    + r""")\s*=\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,;&)}\]]+(?:\s+[A-Z][a-z]+)*)"""
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# North-American and E.164 numbers: +1 (213) 555-0142, 213-555-0142, 213.555.0142, +12135550142.
_PHONE = re.compile(
    r"(?<![\w-])(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]?\d{4}(?![\w-])"
    r"|(?<![\w-])\+\d{8,15}(?![\w-])"
)
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_SALUTATION = re.compile(
    r"(?P<head>\b(?:Dear|Hi|Hello|Hola|Estimad[oa]|Sr\.|Sra\.|Mr\.|Mrs\.|Ms\.|Mx\.|Dr\.)\s+)"
    r"(?P<value>[A-ZÁÉÍÓÚÑ][\w'’\-]+(?:\s+[A-ZÁÉÍÓÚÑ][\w'’\-]+){0,3})"
)
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<value>[A-Za-z0-9._~+/=\-]+)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+._\-]*://)(?P<value>[^/\s:@]+:[^/\s@]+)@", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with patient data and secrets replaced by ``[redacted]``."""
    if not text:
        return text
    text = _QUOTED_FIELD.sub(lambda m: m.group("head") + REDACTED, text)
    text = _ASSIGNED_FIELD.sub(lambda m: m.group("head") + REDACTED, text)
    text = _URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED + "@", text)
    text = _BEARER.sub(lambda m: m.group("head") + REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    text = _SSN.sub(REDACTED, text)
    text = _PHONE.sub(REDACTED, text)
    return _SALUTATION.sub(lambda m: m.group("head") + REDACTED, text)


class PhiRedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through `redact`; never drops a record.

    The message is rendered first (``msg % args``) and the arguments cleared, so a formatter cannot
    bring the raw values back.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_type = record.exc_info[0].__name__
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str | int | float | bool):
                body[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["exc_type"] = record.exc_info[0].__name__
            body["exc"] = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        elif record.exc_text:
            exc_type = record.__dict__.get("exc_type")
            if isinstance(exc_type, str):
                body["exc_type"] = exc_type
            body["exc"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        return json.dumps(body, ensure_ascii=False, default=str)


def logging_dict_config(level: str | int = "INFO", *, stream: str = "ext://sys.stderr") -> dict[str, Any]:
    """A `logging.config.dictConfig` document: every logger through one JSON handler with the filter.

    Pass it as Faust's (mode's) ``logging_config``; mode applies it as it is (no ``merge`` key), which
    replaces its coloured console handler.
    """
    if isinstance(level, int):
        level = logging.getLevelName(level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"phi": {"()": PhiRedactingFilter}},
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "json",
                "filters": ["phi"],
            }
        },
        "root": {"level": str(level).upper(), "handlers": ["json"]},
    }


def configure_logging(level: str | int = "INFO", *, stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one JSON handler with the PHI filter; returns it."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PhiRedactingFilter())
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else str(level).upper())
    return handler
