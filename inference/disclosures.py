"""Approved disclosure wording, per code and language, shared by templates, drafts and guardrails.

Each code has a full form (email, letter, portal, call script) and a short form for SMS. A text carries
a disclosure when it contains either form (compared case-insensitively, whitespace collapsed).
The opt-out of an SMS is special: the text must *end* with `sms_opt_out`.

>>> sms_opt_out("es")
'Responda STOP para cancelar'
>>> carries(["Hi. This communication is from a debt collector."], "debt_collector", "en")
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# code -> lang -> (full, short)
DISCLOSURE_TEXT: dict[str, dict[str, tuple[str, str]]] = {
    "opt_out": {
        "en": (
            'To stop receiving these messages, reply "STOP" or tell us how you prefer to be contacted.',
            "Reply STOP to opt out",
        ),
        "es": (
            'Para dejar de recibir estos mensajes, responda "STOP" o díganos cómo prefiere que lo '
            "contactemos.",
            "Responda STOP para cancelar",
        ),
    },
    "tila_zero_apr": {
        "en": (
            "This plan is interest-free: 0% APR, no finance charge and no fees.",
            "0% APR, no fees.",
        ),
        "es": (
            "Este plan no tiene intereses: 0% APR, sin cargos financieros ni comisiones.",
            "0% APR, sin comisiones.",
        ),
    },
    "debt_collector": {
        "en": ("This communication is from a debt collector.", "From a debt collector."),
        "es": ("Esta comunicación proviene de un cobrador de deudas.", "De un cobrador de deudas."),
    },
    "validation_notice": {
        "en": (
            "This is an attempt to collect a debt, and any information obtained will be used for that "
            "purpose. This communication is from a debt collector.",
            "From a debt collector trying to collect a debt; any information obtained will be used for that.",
        ),
        "es": (
            "Este es un intento de cobrar una deuda y cualquier información obtenida se usará con ese fin. "
            "Esta comunicación proviene de un cobrador de deudas.",
            "De un cobrador de deudas que intenta cobrarla; la información obtenida se usará para ello.",
        ),
    },
    "financial_assistance": {
        "en": (
            "Financial assistance may be available. Ask us how to apply; applying is free.",
            "Financial help may be available.",
        ),
        "es": (
            "Es posible que haya asistencia financiera disponible. Pregúntenos cómo solicitarla; es gratis.",
            "Puede haber ayuda financiera.",
        ),
    },
}

_SPACES = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def full_text(code: str, lang: str) -> str:
    """The full approved wording of a disclosure."""
    return DISCLOSURE_TEXT[code][lang][0]


def short_text(code: str, lang: str) -> str:
    """The short approved wording of a disclosure, for SMS."""
    return DISCLOSURE_TEXT[code][lang][1]


def sms_opt_out(lang: str) -> str:
    """The words every SMS ends with."""
    return short_text("opt_out", lang)


def carries(texts: Iterable[str], code: str, lang: str) -> bool:
    """Whether any of ``texts`` contains the full or short approved wording of ``code``."""
    wanted = _wordings(code, lang)
    return any(w in _norm(t) for t in texts for w in wanted)


@lru_cache(maxsize=256)
def _wordings(code: str, lang: str) -> tuple[str, str]:
    """The full and short approved wordings of ``code``, normalised as `carries` compares them."""
    full, short = DISCLOSURE_TEXT[code][lang]
    return _norm(full).rstrip("."), _norm(short).rstrip(".")


def ends_with_opt_out(text: str, lang: str) -> bool:
    """Whether an SMS ends with the opt-out words (a final period or spaces are tolerated)."""
    return _norm(text).rstrip(" .").endswith(_norm(sms_opt_out(lang)))


def required_codes(channel: str, requested: Iterable[str]) -> tuple[str, ...]:
    """The disclosures a text on ``channel`` must carry: the requested ones, plus the opt-out on every
    email and SMS (C-06); the opt-out is dropped where there is nothing to opt out of (letters, calls).

    >>> required_codes("sms", ["tila_zero_apr"])
    ('tila_zero_apr', 'opt_out')
    >>> required_codes("letter", ["opt_out", "debt_collector"])
    ('debt_collector',)
    """
    codes = [c for c in dict.fromkeys(requested) if c != "opt_out"]
    if "validation_notice" in codes and "debt_collector" in codes:  # the notice's wording contains it
        codes.remove("validation_notice")
        codes.insert(codes.index("debt_collector"), "validation_notice")
    if channel in ("email", "sms") or (channel == "portal" and "opt_out" in requested):
        codes.append("opt_out")
    return tuple(codes)
