"""The X12 835 adapter against the real Blue Cross NC sample and its expected parse, and a written
5010 interchange with claim-level adjustments, a denial and a reversal."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from schemas.adapters import AdapterError, adapt
from schemas.adapters.x12_835 import service_rows
from schemas.events import ClaimAdjudicatedEvent

FIXTURES = Path(__file__).parents[1] / "fixtures"
SAMPLE = (FIXTURES / "x12-835" / "blue_cross_nc_sample.txt").read_bytes()
EXPECTED = FIXTURES / "x12-835" / "blue_cross_nc_sample.expected.csv"
MULTI = (FIXTURES / "platforms" / "x12-835" / "aetna_multi_claim.835").read_bytes()


def _number(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _expected_rows() -> list[dict[str, str]]:
    with EXPECTED.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _segments(payload: bytes) -> list[list[str]]:
    return [s.strip().split("*") for s in payload.decode().split("~") if s.strip()]


def test_service_rows_match_the_expected_csv_exactly() -> None:
    rows = service_rows(SAMPLE)
    expected = _expected_rows()
    assert len(rows) == len(expected) == 3
    for row, want in zip(rows, expected, strict=True):
        assert row.marker == want["marker"]
        assert row.patient == want["patient"]
        assert row.code == want["code"]
        assert row.qualifier == want["qualifier"]
        assert row.modifier == want["modifier"]
        assert row.payer == want["payer"]
        assert row.charge_amount == _number(want["charge_amount"])
        assert row.allowed_amount == _number(want["allowed_amount"])
        assert row.paid_amount == _number(want["paid_amount"])
        assert row.allowed_units == _number(want["allowed_units"])
        assert row.billed_units == _number(want["billed_units"])
        assert row.transaction_date == date.fromisoformat(want["transaction_date"])
        assert row.start_date == date.fromisoformat(want["start_date"])
        assert row.end_date == date.fromisoformat(want["end_date"])
        wanted_adjustments = [
            (want[f"adj_{i}_group"], want[f"adj_{i}_code"], Decimal(want[f"adj_{i}_amount"]))
            for i in range(2)
            if want[f"adj_{i}_group"]
        ]
        assert [(a.group, a.reason, a.amount) for a in row.adjustments] == wanted_adjustments
        assert row.references == ((want["ref_0_qual"], want["ref_0_value"]),)


def test_pr_adjustments_per_service_match_the_csv() -> None:
    rows = service_rows(SAMPLE)
    for row, want in zip(rows, _expected_rows(), strict=True):
        pr = sum((a.amount for a in row.adjustments if a.group == "PR"), Decimal(0))
        wanted = sum(
            (Decimal(want[f"adj_{i}_amount"]) for i in range(2) if want[f"adj_{i}_group"] == "PR"),
            Decimal(0),
        )
        assert pr == wanted


def test_one_claim_event_with_clp_totals_and_every_cas_triplet() -> None:
    (event,) = adapt("x12-835", SAMPLE)
    assert isinstance(event, ClaimAdjudicatedEvent)
    clp = next(s for s in _segments(SAMPLE) if s[0] == "CLP")
    data = event.data
    assert data.claim_id == clp[1]
    assert data.billed == Decimal(clp[3])
    assert data.insurance_paid == Decimal(clp[4])
    assert data.patient_responsibility == Decimal(clp[5])
    assert data.allowed == Decimal(clp[4]) + Decimal(clp[5])
    cas = [s for s in _segments(SAMPLE) if s[0] == "CAS"]
    assert [(a.group, a.reason, a.amount) for a in data.adjustments] == [
        (s[1], s[2], Decimal(s[3])) for s in cas
    ]
    # PR-2 coinsurance and PR-3 copay add up to CLP05.
    assert data.breakdown.coinsurance + data.breakdown.copay == data.patient_responsibility
    assert data.breakdown.deductible == data.breakdown.noncovered == 0
    assert data.status == "partial"
    assert data.payer == "BLUE CROSS AND BLUE SHIELD OF NORTH CAROLINA"
    assert data.service_date == date(2010, 12, 31)
    assert data.patient_id == "YPB123456789001"
    assert data.account_id == "x12-835:YPB123456789001"
    assert data.practice_id == "x12-835:0987654321"
    assert event.time.date() == date(2011, 1, 8)  # BPR16
    assert event.source == "x12-835/practice-0987654321"


def test_the_same_file_gives_the_same_event_ids() -> None:
    first = [e.id for e in adapt("x12-835", SAMPLE)]
    assert first == [e.id for e in adapt("x12-835", SAMPLE)]
    assert first == ["x12-835:claim:02790758:200200964A52:94151100100:1"]


def test_multi_claim_interchange() -> None:
    events = adapt("x12-835", MULTI, source="x12-835/aetna")
    assert [e.data.claim_id for e in events] == ["450912A", "450977B", "449001C"]  # type: ignore[union-attr]
    partial, denied, corrected = (e.data for e in events)
    assert isinstance(partial, type(denied))
    # Claim-level CAS (two triplets in one segment) come first, then each service line's.
    assert [(a.group, a.reason, str(a.amount)) for a in partial.adjustments] == [  # type: ignore[union-attr]
        ("OA", "23", "0.00"),
        ("OA", "94", "0.00"),
        ("CO", "45", "63.63"),
        ("PR", "2", "45.00"),
        ("CO", "45", "27.94"),
        ("PR", "1", "10.56"),
    ]
    assert partial.breakdown.deductible == Decimal("10.56")  # type: ignore[union-attr]
    assert partial.breakdown.coinsurance == Decimal("45.00")  # type: ignore[union-attr]
    assert partial.patient_id == "88231"  # REF*EA medical record number wins
    assert denied.status == "denied"  # type: ignore[union-attr]
    assert denied.patient_id == "W555000111"  # NM1*QC member id
    # The reversal (CLP02 22) is skipped; the corrected claim carries the current adjudication.
    assert corrected.status == "partial"  # type: ignore[union-attr]
    assert corrected.insurance_paid == Decimal("77.10")  # type: ignore[union-attr]
    assert corrected.breakdown.copay == Decimal("15.00")  # type: ignore[union-attr]
    assert all(e.source == "x12-835/aetna" for e in events)


def test_a_cas_segment_with_six_triplets() -> None:
    cas = "CAS*CO*45*10*1*253*1.5**97*2**16*3**18*4**22*5"
    text = SAMPLE.decode().replace("CAS*CO*42*34.6~", cas + "~")
    (event,) = adapt("x12-835", text.encode())
    co = [(a.reason, a.amount) for a in event.data.adjustments if a.group == "CO"]  # type: ignore[union-attr]
    assert co == [
        ("45", Decimal("10.00")),
        ("253", Decimal("1.50")),
        ("97", Decimal("2.00")),
        ("16", Decimal("3.00")),
        ("18", Decimal("4.00")),
        ("22", Decimal("5.00")),
    ]


def test_pr_reason_other_than_1_2_3_is_noncovered() -> None:
    text = SAMPLE.decode().replace("CAS*PR*3*25~", "CAS*PR*96*25~")
    (event,) = adapt("x12-835", text.encode())
    assert event.data.breakdown.noncovered == Decimal("25.00")  # type: ignore[union-attr]
    assert event.data.breakdown.copay == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("CLP*200200964A52*1*2100*", "CLP*200200964A52*1*2100.005*", "ST[0].2100[0].CLP03"),
        ("CAS*PR*2*117.54~", "CAS*PR*2*117.541~", "ST[0].2100[0].2110[0].CAS03"),
        ("CAS*PR*2*117.54~", "CAS*XX*2*117.54~", "ST[0].2100[0].2110[0].CAS01"),
        ("CAS*PR*2*117.54~", "CAS*PR**117.54~", "ST[0].2100[0].2110[0].CAS02"),
        (
            "1057.86**1*HC:59410~DTM*472*20101231",
            "1057.86**1*HC:59410~DTM*472*20101331",
            "ST[0].2100[0].2110[0].DTM02",
        ),
        ("CLP*200200964A52*1*", "CLP*200200964A52*99*", "ST[0].2100[0].CLP02"),
        (
            "BPR*I*1922.86*C*CHK************20110108",
            "BPR*I*1922.86*C*CHK************2011-01-08",
            "ST[0].BPR16",
        ),
    ],
)
def test_unmappable_fields_name_their_path(old: str, new: str, path: str) -> None:
    text = SAMPLE.decode()
    assert old in text
    with pytest.raises(AdapterError) as caught:
        adapt("x12-835", text.replace(old, new).encode())
    assert caught.value.path == path


def test_not_an_835() -> None:
    with pytest.raises(AdapterError, match="starts with ISA"):
        adapt("x12-835", b"hello")
    with pytest.raises(AdapterError, match="not an 835"):
        adapt("x12-835", MULTI.replace(b"ST*835*0001", b"ST*837*0001"))
