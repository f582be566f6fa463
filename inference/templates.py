"""Approved templates: the words every action falls back to, and the only words when no model is set.

One jinja2 file per kind and language under ``inference/templates/`` (``statement_message.en.j2``) holds
four variants: ``subject``, ``body`` (email, portal, letter), ``sms`` and ``call`` (phone call script).
`render_template` fills one from `DraftFacts` and appends the required disclosures in their approved
wording (`inference.disclosures`); an SMS always ends with the opt-out words.

>>> from decimal import Decimal
>>> from inference.facts import DraftFacts
>>> m = render_template(DraftFacts(kind="payment_reminder", channel="sms", practice_name="Oak Clinic",
...                                balance=Decimal("1234.5")))
>>> m.template_id, m.source, m.disclosures
('payment_reminder.sms.en.v1', 'template', ['opt_out'])
>>> m.body.startswith("Oak Clinic: a reminder that your balance of $1,234.50 is open.")
True
>>> m.body.endswith("Reply STOP to opt out")
True
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.environment import TemplateModule

from inference import disclosures as disc
from inference.facts import DraftFacts
from inference.formatting import long_date, money, short_date
from inference.guardrails import clinical_detail
from schemas.actions import Message

TEMPLATE_VERSION = "v1"
SMS_MAX_CHARS = 320

_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_SPACES = re.compile(r"\s+")


@jinja2.pass_context
def _ldate(ctx: Any, day: date) -> str:
    return long_date(day, ctx["lang"])


@jinja2.pass_context
def _sdate(ctx: Any, day: date) -> str:
    return short_date(day, ctx["lang"])


def _money(amount: Decimal) -> str:
    return money(amount)


def _pct(value: Decimal) -> str:
    """A percentage without needless decimals: 250.00 → ``250``, 80.50 → ``80.5``."""
    text = f"{value.quantize(Decimal('0.01')):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inference", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain text, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["money"] = _money
    env.filters["ldate"] = _ldate
    env.filters["sdate"] = _sdate
    env.filters["pct"] = _pct
    # The templates call none of jinja2's globals (range, dict, cycler, ...), and every render copies
    # the globals into its context: without them a context is built in a third of the time.
    env.globals.clear()
    return env


@lru_cache(maxsize=64)
def _template(kind: str, lang: str) -> jinja2.Template:
    return _environment().get_template(f"{kind}.{lang}.j2")


@lru_cache(maxsize=8)
def _macros(lang: str) -> TemplateModule:
    """The language's shared macros (``_macros.<lang>.j2``), given to every template as ``m``: built
    once, where an ``{% import %}`` in each template costs a lookup and a set difference per render."""
    return _environment().get_template(f"_macros.{lang}.j2").module


def template_id(facts: DraftFacts) -> str:
    """``<kind>.<channel>.<lang>.v1``: which approved wording a message used."""
    return f"{facts.kind}.{facts.channel}.{facts.lang}.{TEMPLATE_VERSION}"


def public_sender(facts: DraftFacts) -> str | None:
    """The practice name where others may read it (SMS, subjects), or None when the name itself tells
    a condition or specialty (``Bay Oncology``): then the templates say "billing office" instead."""
    name = (facts.practice_name or "").strip()
    if not name or clinical_detail(name):
        return None
    return name


_DEFAULT = object()


def _render(facts: DraftFacts, variant: str, sender: object = _DEFAULT) -> str:
    text = _template(facts.kind, facts.lang).render(
        facts=facts,
        variant=variant,
        lang=facts.lang,
        m=_macros(facts.lang),
        sender=public_sender(facts) if sender is _DEFAULT else sender,
    )
    if variant in ("sms", "subject"):
        return _SPACES.sub(" ", text).strip()
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def finish_sms(text: str, facts: DraftFacts) -> tuple[str, list[str]]:
    """An SMS with the required short disclosures appended and the opt-out words last.

    Used for templates and model drafts alike; returns the text and the disclosure codes it carries.
    """
    lang = facts.lang
    codes = list(disc.required_codes("sms", facts.disclosures))
    text = _SPACES.sub(" ", text).strip()
    if disc.ends_with_opt_out(text, lang):  # a draft that already ends with the words: keep them last
        text = text.rstrip(" .")[: -len(disc.sms_opt_out(lang))].rstrip()
    parts = [text]
    for code in codes:
        if code != "opt_out" and not disc.carries(parts, code, lang):
            parts.append(disc.short_text(code, lang))
    parts.append(disc.sms_opt_out(lang))
    return " ".join(p for p in parts if p), codes


def finish_body(text: str, facts: DraftFacts) -> tuple[str, list[str]]:
    """A long-form text (email, portal, letter, call script) with the required disclosures appended
    in full, each on its own paragraph; returns the text and the disclosure codes it carries."""
    lang = facts.lang
    codes = list(disc.required_codes(facts.channel, facts.disclosures))
    parts = [text.strip()]
    for code in codes:
        if not disc.carries(parts, code, lang):
            parts.append(disc.full_text(code, lang))
    if facts.channel == "phone":
        say = "Say:" if lang == "en" else "Diga:"
        parts[1:] = [f'{say} "{p}"' for p in parts[1:]]
    return "\n\n".join(parts), codes


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _fit_sms(facts: DraftFacts) -> tuple[str, list[str]]:
    """Render and finish an SMS, dropping the closing sentences (never the first) until it fits, then
    trying the short sender name ("Billing office") instead of a long practice name."""
    for sender in (_DEFAULT, None):
        sentences = _SENTENCE_END.split(_render(facts, "sms", sender))
        while True:
            body, codes = finish_sms(" ".join(sentences), facts)
            if len(body) <= SMS_MAX_CHARS:
                return body, codes
            if len(sentences) == 1:
                break
            sentences.pop()
    return body, codes


def render_template(facts: DraftFacts) -> Message:
    """The approved template for the facts' kind, channel and language, as a `Message`.

    Pure and fast (compiled templates are cached). SMS: at most 320 characters, no patient name or
    service detail, ending with the opt-out words.
    """
    if facts.channel == "sms":
        body, codes = _fit_sms(facts)
        subject = None
    else:
        variant = "call" if facts.channel == "phone" else "body"
        body, codes = finish_body(_render(facts, variant), facts)
        subject = _render(facts, "subject")
    return Message(
        subject=subject,
        body=body,
        language=facts.lang,
        source="template",
        template_id=template_id(facts),
        model=None,
        disclosures=codes,
    )
