"""The Faust baselines of ``billwise bench``: an agent that reads every event and does nothing, and one
that re-sends every event to another topic.

Run as ``python -m streams.bench_faust N [--resend]`` with the engine's environment. When the agent has
seen N events (and, re-sending, the broker has acknowledged all N copies) it prints one JSON line
``{"events": N, "first": t0, "last": t1}`` (monotonic seconds) and the benchmark stops it.

The re-sending agent is the reference the issue's throughput target is set against ("more than twice
what a Faust agent that re-sends every event managed on the same machine"): it pays for consuming and
producing each record, the floor of any agent that answers events with records.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable

import faust
from faust.types import RecordMetadata

from streams.app import faust_settings, faust_worker, raw_schema, set_fetch_wait
from streams.settings import StreamSettings

RESEND_TOPIC = "bench-resent"
"""Where the re-sending baseline writes its copies (prefixed like every topic of the run; the benchmark
creates it with the events' partition count)."""


def build(expected: int, resend: bool = False) -> faust.App:
    settings = StreamSettings()
    set_fetch_wait(settings.consumer_fetch_wait_ms)  # as `streams.app.Engine` does
    app = faust.App(settings.app_id, **{**faust_settings(settings), "web_enabled": False})
    topic = app.topic(settings.topic("events"), schema=raw_schema())
    copies = app.topic(settings.topic(RESEND_TOPIC), schema=raw_schema())
    seen = {"count": 0, "first": 0.0}
    sent: list[Awaitable[RecordMetadata]] = []

    @app.agent(topic, name="resend" if resend else "consume_only")
    async def baseline(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for value in stream:
            seen["count"] += 1
            if seen["count"] == 1:
                seen["first"] = time.monotonic()
            if resend:
                key = stream.current_event.key if stream.current_event else None
                sent.append(await copies.send(key=key, value=value))
            if seen["count"] == expected:
                await asyncio.gather(*sent)  # acknowledged by the broker, not only buffered
                line = {"events": expected, "first": seen["first"], "last": time.monotonic()}
                print(json.dumps(line), flush=True)
            yield None

    return app


if __name__ == "__main__":
    # Logging as the engine's worker has it (`streams.app.faust_worker`); stdout stays ours: the
    # result line is read from it.
    app = build(int(sys.argv[1]), resend="--resend" in sys.argv[2:])
    faust_worker(app, redirect_stdouts=False).execute_from_commandline()
