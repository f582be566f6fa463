"""The sample events (`streams/sample_events.jsonl`) and variations of them the tests share."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "streams" / "sample_events.jsonl"


def later_payment(days: int) -> dict:
    """A $1.00 payment by ACC-1002 ``days`` after its sample payment: then the only event of its day, so
    the other accounts reach that day through the daily-scan timer alone."""
    lines = SAMPLE.read_bytes().splitlines()
    payment = json.loads(next(line for line in lines if b"payment.posted" in line))
    later = datetime.fromisoformat(payment["time"]) + timedelta(days=days)
    payment["id"] = f"later-payment-{days}"
    payment["time"] = payment["data"]["posted_at"] = later.isoformat()
    payment["data"]["payment_id"] = f"PAY-later-{days}"
    payment["data"]["amount"] = "1.00"
    return payment
