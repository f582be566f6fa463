"""`streams.app.faust_worker`: the engine's Faust worker logs at info, and builds no debug records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from streams.app import faust_worker


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
