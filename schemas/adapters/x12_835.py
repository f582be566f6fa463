"""X12 835 (005010X221A1 health care claim payment/advice) to ``billing.claim.adjudicated``.

Parsing uses ``pyx12`` (a maintained HIPAA X12 parser with the 835 5010 map): it tokenises the
interchange with the delimiters the ISA segment declares and places every segment in its loop
(header, 1000A payer, 1000B payee, 2100 claim, 2110 service line). Segment-level validation errors
are not fatal (real remittances, like the Blue Cross NC sample, break minor rules); the fields this
adapter reads are checked here instead. A transaction set without an interchange envelope (starting
``ST*835``) is wrapped in a synthetic ISA/GS/GE/IEA envelope (5010, the text's own delimiters) first.

One event per CLP (2100 claim payment) loop:

- ``claim_id`` = CLP01 (the patient control number, the practice's claim id from 837 CLM01);
- ``billed`` = CLP03, ``insurance_paid`` = CLP04, ``patient_responsibility`` = CLP05 (else the sum of
  the PR adjustments); ``allowed`` = CLP04 + CLP05 (the 835 balancing identity: charge − CO/OA/PI
  adjustments = paid + patient responsibility);
- ``adjustments`` = every CAS triplet (a CAS segment holds up to six reason/amount/quantity triplets)
  of the claim and of its service lines, each with its group code; ``breakdown`` from the PR
  triplets: PR-1 deductible, PR-2 coinsurance, PR-3 copay, any other PR reason noncovered;
- ``status`` from CLP02: 4 denied; 5, 10, 13, 15, 16, 17, 25, 27 pending; processed codes (1, 2, 3,
  19, 20, 21, 23) by the money (paid and nothing owed: paid; something owed: partial; nothing paid
  and nothing owed: denied). CLP02 22 (reversal of a previous payment) is skipped: contract v1 has no
  reversal event, and the corrected claim that follows it carries the current adjudication;
- ``payer`` = N1*PR name; ``service_date`` = the earliest service-line DTM*472/150 date, else the
  claim's DTM*232 statement date;
- ids: ``patient_id`` = the claim's REF*EA medical record number, else the NM1*QC patient member id,
  else CLP01; ``account_id`` = ``x12-835:<patient_id>``; ``practice_id`` = ``x12-835:<payee id>``
  (N1*PE N104, e.g. the NPI, else the payee name);
- time: BPR16 (payment effective date), else DTM*405 (production date), at midnight UTC;
  event id ``x12-835:claim:<TRN02>:<CLP01>:<CLP07>:<CLP02>``. Amounts are USD.

`service_rows` exposes the per-service (SVC, 2110) view: charge SVC02, paid SVC03, allowed AMT*B6,
units SVC05/SVC07, dates, CAS triplets and REF pairs, as the ``edi-835-parser`` expected CSV has it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyx12.error_handler
import pyx12.params
import pyx12.x12context

from schemas.adapters.base import (
    REVERSAL_CLAIM_STATUS,
    ZERO,
    AdapterError,
    Adjustment,
    Context,
    Draft,
    claim_data,
    claim_status,
    draft,
    ids,
    parse_date,
    parse_money,
    start_of_day,
)

PLATFORM = "x12-835"
X12_DATE = ("%Y%m%d",)
SERVICE_DATE_QUALIFIERS = ("472", "150", "151")


@dataclass
class _Segment:
    """One segment's elements (``elements[1]`` is XX01) and its path for errors."""

    elements: list[str]
    components: dict[int, list[str]]
    path: str

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, index: int) -> str:
        return self.elements[index].strip() if index < len(self.elements) else ""

    def component(self, index: int, part: int) -> str:
        parts = self.components.get(index, [self.get(index)])
        return parts[part - 1].strip() if part - 1 < len(parts) else ""

    def at(self, index: int) -> str:
        return f"{self.path}.{self.id}{index:02d}"


@dataclass
class _Loop:
    segments: list[_Segment] = field(default_factory=list)
    loops: list[_Loop] = field(default_factory=list)
    path: str = ""

    def all(self, segment_id: str, qualifier: str | None = None) -> list[_Segment]:
        return [
            s for s in self.segments if s.id == segment_id and (qualifier is None or s.get(1) == qualifier)
        ]

    def one(self, segment_id: str, qualifier: str | None = None) -> _Segment | None:
        found = self.all(segment_id, qualifier)
        return found[0] if found else None


@dataclass
class _Remittance:
    """One 835 transaction set: its header segments and its claim loops."""

    header: _Loop
    claims: list[_Loop]


@dataclass(frozen=True)
class ServiceRow:
    """One service line (SVC, loop 2110) of an 835, with its claim's context."""

    marker: str
    patient: str
    code: str
    modifier: str
    qualifier: str
    allowed_units: Decimal | None
    billed_units: Decimal | None
    transaction_date: date | None
    charge_amount: Decimal | None
    allowed_amount: Decimal | None
    paid_amount: Decimal | None
    payer: str
    start_date: date | None
    end_date: date | None
    rendering_provider: str
    adjustments: tuple[Adjustment, ...]
    references: tuple[tuple[str, str], ...]


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """An 835 file to one claim draft per CLP loop; see the module docstring."""
    drafts = []
    for remittance in _parse(payload):
        for claim in remittance.claims:
            mapped = _claim(remittance, claim)
            if mapped is not None:
                drafts.append(mapped)
    return drafts


def service_rows(payload: bytes) -> list[ServiceRow]:
    """Every service line of an 835 file, in file order (a pure helper for reports and tests)."""
    rows = []
    for remittance in _parse(payload):
        payer = _payer(remittance)
        paid_on = _optional_date(remittance.header.one("BPR"), 16)
        for claim in remittance.claims:
            clp = _require(claim.one("CLP"), claim.path, "CLP")
            patient = claim.one("NM1", "QC")
            name = " ".join(part for part in (patient.get(4), patient.get(3)) if part) if patient else ""
            rendering = claim.one("NM1", "82")
            for service in claim.loops:
                svc = _require(service.one("SVC"), service.path, "SVC")
                dates = {s.get(1): _optional_date(s, 2) for s in service.all("DTM")}
                start = next((dates[q] for q in ("472", "150") if dates.get(q)), None)
                rows.append(
                    ServiceRow(
                        marker=clp.get(1),
                        patient=name,
                        qualifier=svc.component(1, 1),
                        code=svc.component(1, 2),
                        modifier=svc.component(1, 3),
                        allowed_units=_optional_decimal(svc, 5),
                        billed_units=_optional_decimal(svc, 7) or _optional_decimal(svc, 5),
                        transaction_date=paid_on,
                        charge_amount=_optional_money(svc, 2),
                        allowed_amount=_optional_money(service.one("AMT", "B6"), 2),
                        paid_amount=_optional_money(svc, 3),
                        payer=payer,
                        start_date=start,
                        end_date=dates.get("151") or start,
                        rendering_provider=rendering.get(3) if rendering else "",
                        adjustments=tuple(_adjustments(service)),
                        references=tuple((s.get(1), s.get(2)) for s in service.all("REF")),
                    )
                )
    return rows


# -- parsing ----------------------------------------------------------------------------------------


def _text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise AdapterError(f"an X12 file is ASCII/UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if text.startswith("ISA"):
        return text
    if re.match(r"^ST[^A-Za-z0-9 ]835", text):
        return _envelope(text)
    raise AdapterError("an X12 835 file starts with ISA (or ST*835 for a bare transaction set)")


def _envelope(text: str) -> str:
    """Wrap bare ST..SE transaction sets in a synthetic 5010 interchange using their delimiters."""
    element = text[2]
    terminator = text[-1]
    if terminator.isalnum() or terminator in (element, " "):
        raise AdapterError("cannot tell the segment terminator of the transaction set")
    used = set(text)
    spare = [c for c in ":>^|!&" if c not in used and c not in (element, terminator)]
    component = ":" if ":" not in (element, terminator) else spare[0] if spare else None
    repetition = next((c for c in spare if c != component), None)
    if component is None or repetition is None:
        raise AdapterError("no free delimiter for a synthetic interchange envelope")
    sets = len(re.findall(rf"(?:^|{re.escape(terminator)})\s*ST{re.escape(element)}", text))
    fields = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        "ZZ",
        "SENDER".ljust(15),
        "ZZ",
        "RECEIVER".ljust(15),
        "000101",
        "0000",
        repetition,
        "00501",
        "000000001",
        "0",
        "P",
        component,
    ]
    isa = element.join(fields) + terminator
    gs = element.join(["GS", "HP", "SENDER", "RECEIVER", "20000101", "0000", "1", "X", "005010X221A1"])
    trailer = f"GE{element}{sets}{element}1{terminator}IEA{element}1{element}000000001{terminator}"
    return f"{isa}{gs}{terminator}{text}{trailer}"


def _parse(payload: bytes) -> list[_Remittance]:
    text = _text(payload)
    try:
        return _read(text)
    except AdapterError:
        raise
    except Exception as exc:  # pyx12 signals malformed input with many exception types
        raise AdapterError(f"X12 parse error ({type(exc).__name__}): {exc}") from None


def _read(text: str) -> list[_Remittance]:
    reader = pyx12.x12context.X12ContextReader(
        pyx12.params.params(), pyx12.error_handler.errh_null(), io.StringIO(text)
    )
    remittances: list[_Remittance] = []
    current: _Remittance | None = None
    for node in reader.iter_segments("2100"):
        if node.id == "2100":
            if current is None:
                raise AdapterError("a claim loop outside a transaction set")
            path = f"ST[{len(remittances) - 1}].2100[{len(current.claims)}]"
            current.claims.append(_loop(node, path))
            continue
        segment = node.seg_data
        if segment is None:
            continue
        seg_id = segment.get_seg_id()
        if seg_id == "ST":
            if segment.get_value("ST01") != "835":
                raise AdapterError(f"not an 835 transaction set (ST01 {segment.get_value('ST01')!r})", "ST01")
            current = _Remittance(_Loop(path=f"ST[{len(remittances)}]"), [])
            remittances.append(current)
        elif current is not None and seg_id not in ("SE", "GE", "IEA"):
            current.header.segments.append(_segment(segment, current.header.path))
    if not remittances:
        raise AdapterError("no 835 transaction set in the file")
    return remittances


def _segment(segment: Any, path: str) -> _Segment:
    seg_id = segment.get_seg_id() or ""
    elements = [seg_id]
    components: dict[int, list[str]] = {}
    for index in range(1, len(segment) + 1):
        ref = f"{seg_id}{index:02d}"
        elements.append(segment.get_value(ref) or "")
        if segment.is_composite(ref):
            parts = []
            part = 1
            while (value := segment.get_value(f"{ref}-{part}")) is not None and part <= 10:
                parts.append(value)
                part += 1
            components[index] = parts
    return _Segment(elements, components, path)


def _loop(node: Any, path: str) -> _Loop:
    loop = _Loop(path=path)
    for child in node.children:
        if child.type == "seg" and child.seg_data is not None:
            loop.segments.append(_segment(child.seg_data, path))
        elif child.type == "loop":
            loop.loops.append(_loop(child, f"{path}.{child.id}[{len(loop.loops)}]"))
    return loop


# -- fields -----------------------------------------------------------------------------------------


def _require(segment: _Segment | None, path: str, name: str) -> _Segment:
    if segment is None:
        raise AdapterError(f"missing {name} segment", f"{path}.{name}")
    return segment


def _optional_money(segment: _Segment | None, index: int) -> Decimal | None:
    if segment is None or not segment.get(index):
        return None
    return parse_money(segment.get(index), segment.at(index))


def _optional_decimal(segment: _Segment, index: int) -> Decimal | None:
    text = segment.get(index)
    if not text:
        return None
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise AdapterError(f"{text!r} is not a number", segment.at(index))
    return Decimal(text)


def _optional_date(segment: _Segment | None, index: int) -> date | None:
    if segment is None or not segment.get(index):
        return None
    return parse_date(segment.get(index), segment.at(index), X12_DATE)


def _adjustments(loop: _Loop) -> Iterator[Adjustment]:
    """Every CAS triplet of a loop: CAS01 group, then (reason, amount, quantity) up to six times."""
    for cas in loop.all("CAS"):
        group = cas.get(1)
        if group not in ("PR", "CO", "OA", "PI", "CR"):
            raise AdapterError(f"unknown claim adjustment group code {group!r}", cas.at(1))
        for reason_index in range(2, 20, 3):
            reason = cas.get(reason_index)
            amount_text = cas.get(reason_index + 1)
            if not reason and not amount_text:
                continue
            if not reason or not amount_text or len(reason) > 5:
                raise AdapterError("a CAS triplet needs a reason code and an amount", cas.at(reason_index))
            yield Adjustment(group, reason, parse_money(amount_text, cas.at(reason_index + 1)))


def _payer(remittance: _Remittance) -> str:
    payer = remittance.header.one("N1", "PR")
    return payer.get(2) if payer and payer.get(2) else "unknown payer"


def _payment_time(remittance: _Remittance) -> datetime | None:
    day = _optional_date(remittance.header.one("BPR"), 16) or _optional_date(
        remittance.header.one("DTM", "405"), 2
    )
    return start_of_day(day) if day else None


def _claim(remittance: _Remittance, claim: _Loop) -> Draft | None:
    clp = _require(claim.one("CLP"), claim.path, "CLP")
    status_code = clp.get(2)
    if status_code == REVERSAL_CLAIM_STATUS:
        return None
    claim_id = clp.get(1)
    if not claim_id:
        raise AdapterError("a claim needs its patient control number", clp.at(1))
    billed = _optional_money(clp, 3)
    paid = _optional_money(clp, 4)
    if billed is None or paid is None:
        raise AdapterError(
            "a claim needs its total charge and payment amounts", clp.at(3 if billed is None else 4)
        )
    adjustments = list(_adjustments(claim))
    for service in claim.loops:
        adjustments.extend(_adjustments(service))
    responsibility = _optional_money(clp, 5)
    if responsibility is None:
        responsibility = sum((a.amount for a in adjustments if a.group == "PR"), ZERO)
    service_dates = [
        day
        for service in claim.loops
        for dtm in service.all("DTM")
        if dtm.get(1) in SERVICE_DATE_QUALIFIERS and (day := _optional_date(dtm, 2)) is not None
    ]
    statement = claim.one("DTM", "232")
    service_date = min(service_dates, default=None) or _optional_date(statement, 2)
    if service_date is None:
        raise AdapterError(
            "a claim needs a service date (DTM*472 on its lines or DTM*232)", f"{claim.path}.DTM"
        )
    mrn = claim.one("REF", "EA")
    patient = claim.one("NM1", "QC")
    patient_id = (mrn.get(2) if mrn else "") or (patient.get(9) if patient else "") or claim_id
    payee = remittance.header.one("N1", "PE")
    practice = (payee.get(4) or payee.get(2)) if payee else ""
    trace = remittance.header.one("TRN")
    who = ids(PLATFORM, patient_id, practice or "unknown")
    data = claim_data(
        claim_id=claim_id,
        payer=_payer(remittance),
        service_date=service_date,
        billed=billed,
        insurance_paid=paid,
        adjustments=adjustments,
        patient_responsibility=responsibility,
        status=claim_status(status_code, paid, responsibility, clp.at(2)),
    )
    return draft(
        "billing.claim.adjudicated",
        who,
        ("claim", trace.get(2) if trace else "", claim_id, clp.get(7), status_code),
        data,
        claim.path,
        _payment_time(remittance),
        {
            "billed": clp.at(3),
            "insurance_paid": clp.at(4),
            "patient_responsibility": clp.at(5),
            "allowed": clp.at(4),
            "breakdown": f"{claim.path}.CAS",
            "adjustments": f"{claim.path}.CAS",
        },
    )
