"""The language-model server dies mid-stream: the approved templates take over and nothing stalls.

The worker drafts through the stub vLLM server (`inference.stub`, run as its own process so it can be
SIGKILLed like a crashed GPU host). The first half of a simulated practice's events is produced; a
quarter of the way through the stream, with drafts in flight, the stub is killed, and only then is the
second half produced. Every event must still be decided (the same action ids as the offline core, which
uses templates only), every message decided from the second half must come from a template, and the
stream must drain in a bounded time (timeouts and the circuit breaker keep a dead server from holding
batches). Before the outage at least one message must have been drafted by the model: that is what
shows the worker really drafts through ``VLLM_BASE_URL``.

"Decided after the outage" is causal, not a clock reading: a message counts when its trigger is an
event of the second half, or a daily scan of a day no first-half event reached (catch-up scans run just
before an account's next event). A wall-clock cut-off was flaky: a message drafted just before the kill
can be written seconds after it, while the rest of its batch waits out the dead server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from rules.decide import scan_day
from rules.policy import load_policy
from streams.brokers import free_port
from tests.faults.harness import (
    OUTPUT_TOPICS,
    CrashableWorker,
    compare,
    offline_in_background,
    produce,
    read_all,
    wait_drained,
    wait_for_progress,
)
from tests.faults.test_worker_kills import simulated_stream

EVENTS = 2500
SCAN_PREFIX = "scan-"
"""Daily-scan actions name the scan day as their trigger: ``scan-2026-03-16``."""

Records = list[tuple[bytes | None, bytes]]


def _start_stub(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        stub = subprocess.Popen(
            [sys.executable, "-m", "inference.stub", "--port", str(port), "--mode", "good"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return stub
        except httpx.HTTPError:
            time.sleep(0.1)
    stub.kill()
    raise AssertionError(f"the stub did not start:\n{log.read_text(errors='replace')}")


def _events(records: Records) -> Iterator[dict[str, Any]]:
    """The canonical events among ``records`` (the poison records mixed in are skipped)."""
    for _, value in records:
        try:
            event = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if (
            isinstance(event, dict)
            and isinstance(event.get("id"), str)
            and isinstance(event.get("time"), str)
        ):
            yield event


def _decided_after_outage(first_half: Records, second_half: Records) -> Callable[[str], bool]:
    """A predicate on an action's trigger event id: was the action decided from the second half?"""
    policy = load_policy()
    second_ids = {event["id"] for event in _events(second_half)}
    last_first_day = max(scan_day(datetime.fromisoformat(e["time"]), policy) for e in _events(first_half))

    def decided_after(trigger_id: str) -> bool:
        if trigger_id.startswith(SCAN_PREFIX):
            return date.fromisoformat(trigger_id.removeprefix(SCAN_PREFIX)) > last_first_day
        return trigger_id in second_ids

    return decided_after


def test_templates_take_over_when_the_model_server_dies(kafka_bootstrap: str, tmp_path: Path) -> None:
    port = free_port()
    stub = _start_stub(port, tmp_path / "stub.log")
    worker = CrashableWorker(
        kafka_bootstrap,
        tmp_path,
        extra_env={
            "VLLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "VLLM_MODEL": "stub/billwise-drafter",
            "VLLM_TIMEOUT_S": "1.0",
        },
    )
    worker.create_topics()
    records = simulated_stream(EVENTS, seed=9)
    first_half, second_half = records[: len(records) // 2], records[len(records) // 2 :]
    decided_after = _decided_after_outage(first_half, second_half)
    expected_future = offline_in_background(records)
    try:
        worker.start()
        produce(worker.bootstrap, worker.topic("events"), first_half)
        wait_for_progress(worker, at_least=len(records) // 4, timeout_s=180)
        stub.send_signal(signal.SIGKILL)
        stub.wait()
        started = time.monotonic()
        produce(worker.bootstrap, worker.topic("events"), second_half)
        wait_drained(worker, timeout_s=240)
        drain_s = time.monotonic() - started
    finally:
        if stub.poll() is None:
            stub.kill()
        worker.stop()

    out = read_all(worker.bootstrap, [worker.topic(t) for t in OUTPUT_TOPICS])
    result = compare(out, expected_future.result(300), content=False)
    messages = [
        (decided_after(value["trigger"]["event_id"]), value["message"])
        for value in (json.loads(r.raw) for r in out if r.topic.endswith((".actions", ".review")))
        if value.get("message")
    ]
    after = [message for later, message in messages if later]
    fallback_share = sum(m["source"] == "template" for m in after) / len(after) if after else None
    figures = {
        "events": EVENTS,
        "messages": len(messages),
        "llm_drafted": sum(m["source"] == "llm" for _, m in messages),
        "messages_decided_after_outage": len(after),
        "fallback_share_after_outage": fallback_share,
        "drain_after_outage_s": round(drain_s, 1),
        **result.figures(),
    }
    print("\nllm outage figures:", json.dumps(figures))
    assert not result.missing and not result.unexpected and not result.conflicting
    assert after, "no message was decided after the outage: the test proves nothing"
    assert fallback_share == 1.0
    assert figures["llm_drafted"] > 0, "the worker never drafted through VLLM_BASE_URL"
