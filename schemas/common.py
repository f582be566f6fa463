"""Field types shared by every contract model: money, timestamps, identifiers.

Money is a `Decimal` with at most two places. Inputs may carry a JSON number or a string; both parse
without passing through `float`, and more places are rejected. Outputs always carry two places as a
string, as CONTRACT.md says.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Money).validate_json('450.1')
Decimal('450.1')
>>> TypeAdapter(Money).dump_json(Decimal("450.1"))
b'"450.10"'
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

CENT = Decimal("0.01")


def money_text(amount: Decimal) -> str:
    """The contract's text form of an amount: two places, no exponent."""
    return f"{amount.quantize(CENT):f}"


Money = Annotated[
    Decimal,
    Field(decimal_places=2, max_digits=14, allow_inf_nan=False),
    PlainSerializer(money_text, return_type=str, when_used="json"),
]
"""An amount of money: at most two decimal places, serialised as a two-place string."""

NonNegativeMoney = Annotated[Money, Field(ge=0)]

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

Id = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
"""An opaque identifier."""

Timestamp = AwareDatetime
"""An RFC 3339 timestamp with an offset; naive datetimes are rejected."""

E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9]\d{6,14}$")]
"""A phone number in E.164 form, e.g. ``+14155550123``."""


def _known_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]

Channel = Literal["email", "sms", "phone", "letter", "portal"]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]


class ContractModel(BaseModel):
    """Base of inbound contract records.

    Unknown fields are ignored rather than rejected: CONTRACT.md lets producers add optional fields
    within version 1, and a newer producer must not have its events dead-lettered by an older engine.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class OutputModel(BaseModel):
    """Base of records the engine writes: nothing unknown may slip in."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def utc_text(moment: datetime) -> str:
    """RFC 3339 text of an aware datetime in UTC with a ``Z`` suffix."""
    return moment.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
