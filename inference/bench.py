"""Drafting throughput against the stub: drafts per second with the in-flight cap.

Used by ``billwise bench`` (and runnable alone: ``python -m inference.bench``). Everything runs on
127.0.0.1 with a bounded number of requests.

>>> import asyncio
>>> result = asyncio.run(bench_drafting(n=20, latency_s=0.01, max_in_flight=8))
>>> result["drafts"], result["llm_used"]
(20, 20)
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

from inference.client import VllmClient
from inference.drafting import Drafter
from inference.facts import DraftFacts
from inference.stub import StubServer


def _facts(i: int) -> DraftFacts:
    return DraftFacts(
        kind="payment_reminder",
        channel="sms" if i % 2 else "email",
        language="es" if i % 3 == 0 else "en",
        practice_name="Oak Valley Clinic",
        patient_name=f"Patient {i}",
        account_id=f"ACC-{1000 + i}",
        balance=Decimal(100 + i).quantize(Decimal("0.01")),
    )


async def bench_drafting(
    n: int = 200, latency_s: float = 0.2, max_in_flight: int = 16, timeout_s: float = 5.0
) -> dict[str, Any]:
    """Draft ``n`` messages concurrently through the stub answering after ``latency_s``."""
    async with StubServer("slow", delay_s=latency_s) as stub:
        client = VllmClient(stub.base_url, "stub", timeout_s=timeout_s, max_in_flight=max_in_flight)
        drafter = Drafter(client, timeout_s=timeout_s)
        try:
            started = time.perf_counter()
            outcomes = await asyncio.gather(*(drafter.draft(_facts(i)) for i in range(n)))
            elapsed = time.perf_counter() - started
        finally:
            await drafter.aclose()
    used = sum(1 for o in outcomes if o.fallback_reason is None)
    return {
        "drafts": n,
        "llm_used": used,
        "stub_latency_s": latency_s,
        "max_in_flight": max_in_flight,
        "seconds": round(elapsed, 3),
        "drafts_per_second": round(n / elapsed, 1),
        "ceiling_drafts_per_second": round(max_in_flight / latency_s, 1) if latency_s else None,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(bench_drafting())))
