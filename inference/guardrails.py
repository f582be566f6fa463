"""Output gates of POLICY.md section 3 for drafted words: amounts, tone, SMS shape, PHI in SMS, disclosures.

`check_message` is deterministic and cheap; it runs on every model draft before it may be used, and the
staff review "edit" path runs it on edited text. An empty list means the words may go out.

>>> from decimal import Decimal
>>> from inference.facts import DraftFacts
>>> from schemas.actions import Message
>>> facts = DraftFacts(kind="payment_reminder", channel="sms", balance=Decimal("450.75"))
>>> ok = Message(body="Your balance is $450.75. Reply STOP to opt out", source="llm")
>>> check_message(ok, facts)
[]
>>> bad = Message(body="Pay $500 now or we will take legal action. Reply STOP to opt out", source="llm")
>>> [v.code for v in check_message(bad, facts)]
['threat', 'unknown_amount']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict

from inference import disclosures as disc
from inference.facts import DraftFacts
from inference.formatting import MONTHS_EN, MONTHS_ES
from inference.tokeniser import LEFTOVER_TOKEN_RE
from schemas.actions import Message

SMS_MAX_CHARS = 320
CENT = Decimal("0.01")

REASON_PRIORITY: tuple[str, ...] = (
    "threat",
    "false_urgency",
    "unknown_amount",
    "unknown_date",
    "phi_in_sms",
    "phi_in_subject",
    "unresolved_token",
    "sms_shape",
    "missing_disclosure",
    "empty_text",
)
"""Violation codes, most serious first: the first one found names a fallback."""


class Violation(BaseModel):
    """One failed output gate. ``detail`` names the offending phrase or code, never patient identity."""

    model_config = ConfigDict(frozen=True)

    code: str
    detail: str = ""


# --- money ---------------------------------------------------------------------------------------
_NUM = r"\d{1,3}(?:,\d{3})+|\d+"
_MONEY_RE = re.compile(
    rf"""
      (?:US\$|\$|\bUSD\s?)\s?(?P<a>{_NUM})(?:\.(?P<ac>\d{{1,2}}))?(?![\d,]*\d)          # $1,234.50  USD 450
    | (?<![\w$.,])(?P<b>{_NUM})(?:\.(?P<bc>\d{{2}}))?\s?(?:dollars?|d[oó]lares|USD)\b  # 450 dollars
    | (?<![\w$.,])(?P<c>{_NUM})\.(?P<cc>\d{{2}})(?![\d%])                               # a bare 450.75
    """,
    re.IGNORECASE | re.VERBOSE,
)


def money_mentions(text: str) -> Iterator[tuple[str, Decimal]]:
    """Every money amount written in ``text``, as (the words, the value).

    >>> [v for _, v in money_mentions("Pay $1,234.5 or 20 dollars, not 0% APR; 99.10 left")]
    [Decimal('1234.50'), Decimal('20.00'), Decimal('99.10')]
    """
    for match in _MONEY_RE.finditer(text):
        for whole, cents in (("a", "ac"), ("b", "bc"), ("c", "cc")):
            if match.group(whole) is not None:
                digits = match.group(whole).replace(",", "")
                frac = match.group(cents) or "0"
                try:
                    value = Decimal(f"{digits}.{frac}").quantize(CENT)
                except InvalidOperation:  # pragma: no cover - the regex admits digits only
                    continue
                yield match.group(0).strip(), value
                break


# --- dates ---------------------------------------------------------------------------------------
_EN_MONTHS = {m[:3].lower(): i + 1 for i, m in enumerate(MONTHS_EN)}
_ES_MONTHS = {m[:3]: i + 1 for i, m in enumerate(MONTHS_ES)} | {"set": 9}
_DATE_EN_RE = re.compile(
    r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b"
    r"(?:,?\s+(\d{4}))?"
)
_DATE_ES_RE = re.compile(
    r"\b(\d{1,2})\s+(?:de\s+)?(ene|feb|mar|abr|may|jun|jul|ago|sep|set|oct|nov|dic)[a-z]*\.?"
    r"(?:\s+(?:de(?:l)?\s+)?(\d{4}))?\b",
    re.IGNORECASE,
)
_DATE_NUM_RE = re.compile(r"(?<![\d$.,/])(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?(?![\d/])")
_DATE_ISO_RE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _date_candidates(text: str) -> Iterator[tuple[str, list[tuple[int | None, int, int]]]]:
    """Dates written in ``text``: (the words, possible (year or None, month, day) readings)."""
    for m in _DATE_EN_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        yield m.group(0), [(year, _EN_MONTHS[m.group(1).lower()], int(m.group(2)))]
    for m in _DATE_ES_RE.finditer(text):
        year = int(m.group(3)) if m.group(3) else None
        yield m.group(0), [(year, _ES_MONTHS[m.group(2).lower()], int(m.group(1)))]
    for m in _DATE_NUM_RE.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        year = int(m.group(3)) if m.group(3) else None
        if year is not None and year < 100:
            year += 2000
        yield m.group(0), [(year, a, b), (year, b, a)]  # US m/d or Spanish d/m
    for m in _DATE_ISO_RE.finditer(text):
        yield m.group(0), [(int(m.group(1)), int(m.group(2)), int(m.group(3)))]


def _date_known(readings: list[tuple[int | None, int, int]], known: frozenset[date]) -> bool:
    return any(
        d.month == month and d.day == day and (year is None or d.year == year)
        for year, month, day in readings
        for d in known
    )


# --- tone ------------------------------------------------------------------------------------------
def _compile(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    return [re.compile(p, re.IGNORECASE) for p in patterns]


THREAT_PATTERNS = _compile(
    [
        # English: suit, arrest, garnishment, credit reporting, agency placement, implied legal/government
        r"\bsu(?:e|ed|ing)\b",
        r"\blaw ?suits?\b",
        r"\blegal (?:action|actions|proceedings?|steps|measures|department|team)\b",
        r"\blitigat\w*",
        r"\bcourts?\b",
        r"\bjudg(?:e|ment)s?\b",
        r"\battorneys?\b",
        r"\blawyers?\b",
        r"\barrest\w*",
        r"\bjail\b",
        r"\bprison\b",
        r"\bpolice\b",
        r"\bcriminal\b",
        r"\bprosecut\w*",
        r"\bgarnish\w*",
        r"\bwages?\b",
        r"\bpaychecks?\b",
        r"\bseiz\w*",
        r"\bliens?\b",
        r"\brepossess\w*",
        r"\bcredit (?:bureaus?|reports?|reporting|scores?|history|rating|agenc\w+)\b",
        r"\b(?:equifax|experian|transunion)\b",
        r"\breport(?:ed|ing)? (?:you|this|it|the (?:debt|balance|account)|your (?:account|debt|balance))\b",
        r"\bcollections? (?:agenc\w+|department|firm)\b",
        r"\b(?:sent|turned over|referred|placed|transferred|assigned|forwarded) (?:to|with|in|into) "
        r"(?:a |an |the |our )?(?:collections?|collection agenc\w+|agenc\w+)\b",
        r"\bto collections\b",
        r"\bconsequences\b",
        r"\bgovernment\b",
        # Spanish
        r"\bdemand(?:a|as|ar|aremos|arle|arlo|arla)\b",
        r"\bacci[oó]n(?:es)? (?:legal|legales|judicial|judiciales)\b",
        r"\bmedidas (?:legales|judiciales)\b",
        r"\bprocedimientos? (?:legal|legales|judicial|judiciales)\b",
        r"\btribunal(?:es)?\b",
        r"\bcorte\b",
        r"\bjuzgados?\b",
        r"\bjuicio\b",
        r"\babogad[oa]s?\b",
        r"\barrest\w*",
        r"\bdetenci[oó]n\b",
        r"\bc[aá]rcel\b",
        r"\bprisi[oó]n\b",
        r"\bpolic[ií]a\b",
        r"\bembarg\w*",
        r"\bsalario\b",
        r"\bsueldo\b",
        r"\bbur[oó] de cr[eé]dito\b",
        r"\b(?:historial|reporte|informe|puntaje|calificaci[oó]n) "
        r"(?:de cr[eé]dito|creditici[oa])\b",
        r"\bagencias? de (?:cobranzas?|cobros?)\b",
        r"\b(?:enviar|enviaremos|pasar|pasaremos|remitir|remitiremos|transferir|transferiremos)\w* "
        r"(?:su (?:cuenta|deuda) )?a (?:una )?(?:agencia|cobranza)",
        r"\bconsecuencias\b",
        r"\bgobierno\b",
    ]
)

URGENCY_PATTERNS = _compile(
    [
        r"\bfinal (?:notice|warning|demand|reminder|opportunity)\b",
        r"\blast (?:chance|warning|notice|opportunity)\b",
        r"\bimmediate(?:ly)?\b",
        r"\burgent(?:ly)?\b",
        r"\bact (?:now|fast|today)\b",
        r"\bpay (?:now|today)\b",
        r"\bright away\b",
        r"\bwithin (?:24|48|72) hours\b",
        r"\b(?:today|tomorrow) only\b",
        r"\bexpires? (?:today|tomorrow|tonight|soon)\b",
        r"\bbefore it'?s too late\b",
        r"\bdon'?t (?:wait|delay)\b",
        r"\bor else\b",
        r"\basap\b",
        r"\btime is running out\b",
        r"\b[uú]ltim[oa] (?:aviso|advertencia|oportunidad)\b",
        r"\baviso final\b",
        r"\binmediat[oa](?:mente)?\b",
        r"\bde inmediato\b",
        r"\burgente(?:mente)?\b",
        r"\bact[uú]e (?:ahora|ya|hoy)\b",
        r"\bpague (?:ahora|ya|hoy)\b",
        r"\bsin demora\b",
        r"\ben (?:24|48|72) horas\b",
        r"\bs[oó]lo hoy\b",
        r"\bvence (?:hoy|ma[nñ]ana)\b",
        r"\bno (?:espere|se demore)\b",
        r"\bantes de que sea tarde\b",
    ]
)

# --- clinical detail (SMS and subjects) ----------------------------------------------------------
CLINICAL_PATTERNS = _compile(
    [
        r"\bdiagnos\w*",
        r"\bdiagn[oó]stic\w*",
        r"\bprocedures?\b",
        r"\bprocedimientos?\b",
        r"\bsurg\w*",
        r"\bcirug[ií]a\w*",
        r"\bbiops\w*",
        r"\bx-?rays?\b",
        r"\bradiograf\w*",
        r"\bmri\b",
        r"\bresonancia\b",
        r"\bct scan\b",
        r"\btomograf\w*",
        r"\bultrasound\b",
        r"\bultrasonido\b",
        r"\becograf\w*",
        r"\blab(?:s|oratory)?\b",
        r"\blaboratorio\b",
        r"\bblood (?:test|work|draw)\b",
        r"\ban[aá]lisis de sangre\b",
        r"\bscreenings?\b",
        r"\bvaccin\w*",
        r"\bvacuna\w*",
        r"\bcolonoscop\w*",
        r"\bmammogra\w*",
        r"\bmamograf\w*",
        r"\bchemo\w*",
        r"\bquimio\w*",
        r"\btherap\w*",
        r"\bterapia\w*",
        r"\bprescriptions?\b",
        r"\brecetas?\b",
        r"\bmedications?\b",
        r"\bmedicamentos?\b",
        r"\boffice visit\b",
        r"\bconsultations?\b",
        r"\bconsulta\b",
        r"\bexam(?:ination)?s?\b",
        r"\bexamen\b",
        r"\btreatments?\b",
        r"\btratamientos?\b",
        r"\bcancer\b",
        r"\bc[aá]ncer\b",
        r"\boncolog\w*",
        r"\bcardiolog\w*",
        r"\bpsychiatr\w*",
        r"\bpsiquiatr\w*",
        r"\bpsycholog\w*",
        r"\bpsicolog\w*",
        r"\bbehavioral health\b",
        r"\bmental health\b",
        r"\bsalud mental\b",
        r"\bdermatolog\w*",
        r"\bobstetric\w*",
        r"\bobstetricia\b",
        r"\bgyn(?:a)?ecolog\w*",
        r"\bginecolog\w*",
        r"\burolog\w*",
        r"\bradiolog\w*",
        r"\bneurolog\w*",
        r"\borthop(?:a)?ed\w*",
        r"\bortoped\w*",
        r"\bgastroenterolog\w*",
        r"\bpediatr\w*",
        r"\bpregnan\w*",
        r"\bembaraz\w*",
        r"\babort\w*",
        r"\bdialys\w*",
        r"\bdi[aá]lisis\b",
        r"\bhiv\b",
        r"\bvih\b",
        r"\bsubstance use\b",
        r"\baddiction\b",
        r"\badicci[oó]n\w*",
        r"\brehab\w*",
        r"\bcpt\b",
        r"\bicd(?:-?10)?\b",
        r"\bhcpcs\b",
    ]
)
_CODE_PATTERNS = [
    re.compile(r"(?<![\w$.,])\d{4}[0-9FTU](?![\w,.]*\d)"),  # CPT: 99213, 0001F
    re.compile(r"\b[A-TV-Z]\d[0-9A-Z]\.[0-9A-Z]{1,4}\b"),  # ICD-10-CM: E11.9, M54.50
    re.compile(r"\b[A-V]\d{4}\b"),  # HCPCS level II: J1100
]


def _first_match(patterns: Iterable[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return found.group(0)
    return None


def clinical_detail(text: str) -> str | None:
    """The first clinical term or billing code in ``text``, if any.

    >>> clinical_detail("Your MRI: $80.00"), clinical_detail("Code 99213"), clinical_detail("Hi")
    ('MRI', '99213', None)
    """
    return _first_match(CLINICAL_PATTERNS, text) or _first_match(_CODE_PATTERNS, text)


def threat(text: str) -> str | None:
    """The first threatening phrase in ``text`` (English or Spanish), if any."""
    return _first_match(THREAT_PATTERNS, text)


def false_urgency(text: str) -> str | None:
    """The first false-urgency phrase in ``text`` (English or Spanish), if any."""
    return _first_match(URGENCY_PATTERNS, text)


# --- the check -------------------------------------------------------------------------------------
def check_message(message: Message, facts: DraftFacts) -> list[Violation]:
    """Every output gate ``message`` fails for ``facts`` (the channel comes from ``facts``).

    Codes: ``threat``, ``false_urgency``, ``unknown_amount``, ``unknown_date``, ``phi_in_sms``,
    ``phi_in_subject``, ``unresolved_token``, ``sms_shape``, ``missing_disclosure``, ``empty_text``;
    sorted by `REASON_PRIORITY`.
    """
    lang = facts.lang
    texts = [t for t in (message.subject, message.body) if t]
    found: list[Violation] = []
    if not message.body.strip():
        found.append(Violation(code="empty_text", detail="body"))
    for text in texts:
        phrase = threat(text)
        if phrase:
            found.append(Violation(code="threat", detail=phrase))
        phrase = false_urgency(text)
        if phrase:
            found.append(Violation(code="false_urgency", detail=phrase))
        known_amounts = facts.known_amounts()
        for words, value in money_mentions(text):
            if value not in known_amounts:
                found.append(Violation(code="unknown_amount", detail=words))
        known_dates = facts.known_dates()
        for words, readings in _date_candidates(text):
            if not _date_known(readings, known_dates):
                found.append(Violation(code="unknown_date", detail=words))
        leftover = LEFTOVER_TOKEN_RE.search(text)
        if leftover:
            found.append(Violation(code="unresolved_token", detail="placeholder left in text"))
    if facts.channel == "sms":
        body = message.body
        if len(body) > SMS_MAX_CHARS:
            found.append(Violation(code="sms_shape", detail=f"{len(body)} characters > {SMS_MAX_CHARS}"))
        if not disc.ends_with_opt_out(body, lang):
            found.append(Violation(code="sms_shape", detail=f"does not end with {disc.sms_opt_out(lang)!r}"))
        detail = clinical_detail(body)
        if detail:
            found.append(Violation(code="phi_in_sms", detail=detail))
    elif message.subject:
        detail = clinical_detail(message.subject)
        if detail:
            found.append(Violation(code="phi_in_subject", detail=detail))
    for code in disc.required_codes(facts.channel, facts.disclosures):
        if facts.channel == "sms" and code == "opt_out":
            continue  # the SMS shape check owns the opt-out words
        if not disc.carries(texts, code, lang):
            found.append(Violation(code="missing_disclosure", detail=code))
    order = {code: i for i, code in enumerate(REASON_PRIORITY)}
    return sorted(dict.fromkeys(found), key=lambda v: order.get(v.code, len(order)))


def primary_reason(violations: Iterable[Violation]) -> str | None:
    """The most serious violation code, or None when there is none."""
    codes = {v.code for v in violations}
    return next((code for code in REASON_PRIORITY if code in codes), None)
