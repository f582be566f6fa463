"""The language-model server dies mid-stream: the approved templates take over and nothing stalls.

The worker drafts through the stub vLLM server (`inference.stub`, run as its own process so it can be
SIGKILLed like a crashed GPU host). A third of the way through a simulated practice's events the stub
is killed. Every event must still be decided (the same action ids as the offline core, which uses
templates only), every message written after the outage must come from a template, and the stream must
drain in a bounded time (timeouts and the circuit breaker keep a dead server from holding batches).
Before the outage at least one message must have been drafted by the model: that is what shows the
worker really drafts through ``VLLM_BASE_URL``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

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
    expected_future = offline_in_background(records)
    try:
        worker.start()
        produce(worker.bootstrap, worker.topic("events"), records)
        wait_for_progress(worker, at_least=len(records) // 3, timeout_s=180)
        stub.send_signal(signal.SIGKILL)
        stub.wait()
        killed_at_ms = time.time() * 1000
        started = time.monotonic()
        wait_drained(worker, timeout_s=240)
        drain_s = time.monotonic() - started
    finally:
        if stub.poll() is None:
            stub.kill()
        worker.stop()

    out = read_all(worker.bootstrap, [worker.topic(t) for t in OUTPUT_TOPICS])
    result = compare(out, expected_future.result(300), content=False)
    messages = [
        (r.timestamp_ms, json.loads(r.raw)["message"])
        for r in out
        if r.topic.endswith((".actions", ".review")) and json.loads(r.raw).get("message")
    ]
    # Records produced within a second of the kill may have been drafted just before it.
    after = [m for t, m in messages if t > killed_at_ms + 1000]
    before = [m for t, m in messages if t < killed_at_ms]
    fallback_share = sum(m["source"] == "template" for m in after) / len(after) if after else None
    figures = {
        "events": EVENTS,
        "messages_before_outage": len(before),
        "llm_drafted_before_outage": sum(m["source"] == "llm" for m in before),
        "messages_during_outage": len(after),
        "fallback_share_during_outage": fallback_share,
        "drain_after_outage_s": round(drain_s, 1),
        **result.figures(),
    }
    print("\nllm outage figures:", json.dumps(figures))
    assert not result.missing and not result.unexpected and not result.conflicting
    assert after, "no message was written after the outage: the test proves nothing"
    assert fallback_share == 1.0
    assert figures["llm_drafted_before_outage"] > 0, "the worker never drafted through VLLM_BASE_URL"
