"""How money and dates are written in every text, drafted or templated.

One format for both languages keeps amounts machine-checkable (`inference.guardrails`).

>>> from decimal import Decimal
>>> money(Decimal("1234.5"))
'$1,234.50'
>>> from datetime import date
>>> long_date(date(2026, 3, 5), "en"), long_date(date(2026, 3, 5), "es")
('March 5, 2026', '5 de marzo de 2026')
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS_ES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


def money(amount: Decimal) -> str:
    """``$1,234.50``: dollar sign, thousands commas, two places (the same in Spanish)."""
    return f"${amount.quantize(CENT):,.2f}"


def long_date(day: date, lang: str = "en") -> str:
    """``March 5, 2026`` in English, ``5 de marzo de 2026`` in Spanish."""
    if lang == "es":
        return f"{day.day} de {MONTHS_ES[day.month - 1]} de {day.year}"
    return f"{MONTHS_EN[day.month - 1]} {day.day}, {day.year}"


def short_date(day: date, lang: str = "en") -> str:
    """``Mar 5`` / ``5 mar``: for SMS, where every character counts."""
    if lang == "es":
        return f"{day.day} {MONTHS_ES[day.month - 1][:3]}"
    return f"{MONTHS_EN[day.month - 1][:3]} {day.day}"
