"""`streams.app.faust_worker` and `faust_settings`: the engine's Faust worker logs at info, builds no debug
records, and its producer buffers large batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import faust
import pytest

from streams.app import faust_settings, faust_worker
from streams.settings import StreamSettings


@pytest.fixture
def restored_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_debug_records_are_not_built_in_the_worker(restored_root_logger: logging.Logger) -> None:
    app = faust.App("test-faust-worker", web_enabled=False)
    # The trap the helper avoids: at warning, Faust's worker leaves the root logger at DEBUG.
    faust.Worker(app, loglevel="warning", redirect_stdouts=False)._setup_logging()
    assert logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)

    faust_worker(app, redirect_stdouts=False)._setup_logging()

    assert restored_root_logger.level == logging.INFO
    assert not logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("faust.agents.agent").isEnabledFor(logging.INFO)


def test_the_producer_batches_up_to_the_configured_size_not_aiokafkas_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Faust renames its settings on the way to aiokafka: what counts is the size aiokafka's accumulator
    # ends up with (private, so a Faust or aiokafka upgrade that drops the setting fails here).
    async def batch_size(settings: StreamSettings) -> int:
        app = faust.App("batch-size-test", **faust_settings(settings))
        producer = app.producer._new_producer()
        try:
            return int(producer._message_accumulator._batch_size)
        finally:
            await producer.stop()

    assert asyncio.run(batch_size(StreamSettings())) == 256 * 1024  # aiokafka's own is 16 KiB
    monkeypatch.setenv("BILLWISE_PRODUCER_BATCH_KIB", "64")
    assert asyncio.run(batch_size(StreamSettings())) == 64 * 1024
