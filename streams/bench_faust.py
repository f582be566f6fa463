"""The Faust consume-only baseline of ``billwise bench``: an agent that reads every event and does nothing.

Run as ``python -m streams.bench_faust N`` with the engine's environment. When the agent has seen N
events it prints one JSON line ``{"events": N, "first": t0, "last": t1}`` (monotonic seconds) and the
benchmark stops it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator

import faust

from streams.app import faust_settings, faust_worker, raw_schema
from streams.settings import StreamSettings


def build(expected: int) -> faust.App:
    settings = StreamSettings()
    app = faust.App(settings.app_id, **{**faust_settings(settings), "web_enabled": False})
    topic = app.topic(settings.topic("events"), schema=raw_schema())
    seen = {"count": 0, "first": 0.0}

    @app.agent(topic, name="consume_only")
    async def consume_only(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _ in stream:
            seen["count"] += 1
            if seen["count"] == 1:
                seen["first"] = time.monotonic()
            if seen["count"] == expected:
                line = {"events": expected, "first": seen["first"], "last": time.monotonic()}
                print(json.dumps(line), flush=True)
            yield None

    return app


if __name__ == "__main__":
    # Logging as the engine's worker has it (`streams.app.faust_worker`); stdout stays ours: the
    # result line is read from it.
    faust_worker(build(int(sys.argv[1])), redirect_stdouts=False).execute_from_commandline()
