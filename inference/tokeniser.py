"""PHI tokeniser: identity is replaced by random per-request tokens before a model call, restored after.

Tokens are random (``secrets``), never derived from the value they stand for (HIPAA 164.514(c)), and
live only in the `PhiTokeniser` instance of one request: the mapping never leaves the engine.
Known identifiers (the patient's name and its parts, ids) are registered from the facts; free text is
also scanned for emails, phone numbers, SSNs, dates, street addresses, ZIP codes and id-like codes.

>>> t = PhiTokeniser()
>>> tok = t.register("NAME", "Maria Lopez")
>>> safe = t.scrub("Call Maria Lopez at (415) 555-0123 or maria@example.org")
>>> "Maria" in safe or "555" in safe or "example.org" in safe
False
>>> t.restore(safe)
'Call Maria Lopez at (415) 555-0123 or maria@example.org'
"""

from __future__ import annotations

import re
import secrets

TOKEN_KINDS = ("NAME", "ID", "DOB", "DATE", "PHONE", "EMAIL", "ADDR", "SSN", "ZIP")

_KINDS_ALT = "|".join(TOKEN_KINDS)
TOKEN_RE = re.compile(r"\[(?:" + _KINDS_ALT + r")_[0-9A-F]{8}\]")
LEFTOVER_TOKEN_RE = re.compile(r"\b(?:" + _KINDS_ALT + r")_[0-9A-Fa-f]{4,}\b")
"""A token, or what is left of one after a model mangled it (brackets dropped, digits cut)."""

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_MES = (
    r"(?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|"
    r"diciembre)"
)
_STREET = (
    r"(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Dr|Drive|Ln|Lane|Way|Ct|Court|Pl|Place|Ter|Terrace|"
    r"Pkwy|Parkway|Hwy|Highway|Cir|Circle|Sq|Square|Trl|Trail)"
)

# Order matters: the first pattern to claim a span wins. The first _STRUCTURED ones run before the
# registered names (a name inside an email address is part of the address).
_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("EMAIL", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("PHONE", re.compile(r"(?<![\w$])\+\d{8,15}\b")),
    ("PHONE", re.compile(r"(?<![\w$.,])(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}\b")),
    ("PHONE", re.compile(r"(?<![\w$.,])\d{10}\b")),
    ("DATE", re.compile(r"\b\d{4}-\d{2}-\d{2}\b")),
    ("DATE", re.compile(r"(?<![\d$.,/])\d{1,2}/\d{1,2}/\d{2,4}\b")),
    ("DATE", re.compile(r"\b" + _MONTH + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b")),
    ("DATE", re.compile(r"\b\d{1,2}\s+de\s+" + _MES + r"(?:\s+de(?:l)?\s+\d{4})?\b", re.IGNORECASE)),
    (
        "ADDR",
        re.compile(
            r"\b\d{1,6}\s+(?:[A-Z0-9][\w.'-]*\s+){1,4}" + _STREET + r"\b\.?"
            r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[\w-]+)?"
        ),
    ),
    ("ADDR", re.compile(r"\b(?:Calle|Avenida|Av\.)\s+(?:[\w.'-]+\s+){0,4}\d{1,6}\b")),
    ("ZIP", re.compile(r"(?<![\w$.,-])\d{5}(?:-\d{4})?(?![\w,.]*\d)")),
    ("ID", re.compile(r"\b[A-Z]{2,6}-?\d{3,}(?:-\d+)*\b")),
)
_STRUCTURED = 5


class PhiTokeniser:
    """One request's vault: values ↔ random tokens. Never share an instance between requests."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._restore: dict[str, str] = {}
        self._known: list[tuple[str, str]] = []  # (kind, value) scanned for in free text

    def _new_token(self, kind: str) -> str:
        while True:
            token = f"[{kind}_{secrets.token_hex(4).upper()}]"
            if token not in self._restore:
                return token

    def token_for(self, kind: str, value: str, display: str | None = None) -> str:
        """The token for ``value`` (the same one within this request); restored as ``display``
        (default: the value itself), e.g. a date restored in the message's language."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        key = (kind, value)
        token = self._by_value.get(key)
        if token is None:
            token = self._new_token(kind)
            self._by_value[key] = token
            self._restore[token] = value if display is None else display
        return token

    def register(self, kind: str, value: str) -> str:
        """Tokenise a known identifier and remember to replace it wherever it appears in free text.

        A name also registers each of its parts (``Maria Lopez`` → ``Maria``, ``Lopez``).
        """
        value = value.strip()
        token = self.token_for(kind, value)
        self._known.append((kind, value))
        if kind == "NAME":
            for part in re.split(r"[\s,]+", value):
                if len(part) >= 2 and part != value:
                    self.token_for(kind, part)
                    self._known.append((kind, part))
        return token

    def scrub(self, text: str) -> str:
        """``text`` with every registered identifier and every detected PHI pattern replaced by tokens."""
        for kind, pattern in _DETECTORS[:_STRUCTURED]:
            text = self._sub_outside_tokens(text, kind, pattern)
        for kind, value in sorted(set(self._known), key=lambda kv: -len(kv[1])):
            pattern = re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE)
            text = self._sub_outside_tokens(text, kind, pattern)
        for kind, pattern in _DETECTORS[_STRUCTURED:]:
            text = self._sub_outside_tokens(text, kind, pattern)
        return text

    def _sub_outside_tokens(self, text: str, kind: str, pattern: re.Pattern[str]) -> str:
        out: list[str] = []
        pos = 0
        for token_match in [*TOKEN_RE.finditer(text), None]:
            end = token_match.start() if token_match else len(text)
            out.append(pattern.sub(lambda m: self.token_for(kind, m.group(0)), text[pos:end]))
            if token_match:
                out.append(token_match.group(0))
                pos = token_match.end()
        return "".join(out)

    def restore(self, text: str) -> str:
        """``text`` with every token of this request replaced by its value (unknown tokens stay)."""
        return TOKEN_RE.sub(lambda m: self._restore.get(m.group(0), m.group(0)), text)

    def restore_value(self, value: object) -> object:
        """`restore` applied to every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.restore(value)
        if isinstance(value, list):
            return [self.restore_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.restore_value(v) for k, v in value.items()}
        return value

    @property
    def tokens(self) -> frozenset[str]:
        """Every token issued in this request."""
        return frozenset(self._restore)
