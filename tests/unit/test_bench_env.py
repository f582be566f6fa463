"""What a `billwise bench` run tells the processes it starts, per broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench import _Run
from streams.settings import StreamSettings


def _settings_seen_by_a_process(broker: str, monkeypatch: pytest.MonkeyPatch) -> StreamSettings:
    run = _Run("127.0.0.1:9092", broker, Path("/scratch"), StreamSettings(topic_prefix="bench1"))
    for name, value in run.env("bench-engine").items():
        monkeypatch.setenv(name, value)
    return StreamSettings()


def test_on_tansu_fetches_are_held_briefly_as_in_the_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tansu answers a fetch only when its wait is up: Faust's 1.5 s would be what the latency run measures.
    assert _settings_seen_by_a_process("tansu", monkeypatch).consumer_fetch_wait_ms == 50


@pytest.mark.parametrize("broker", ["apache", "external"])
def test_other_brokers_keep_fausts_fetch_wait(broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLWISE_CONSUMER_FETCH_WAIT_MS", raising=False)
    settings = _settings_seen_by_a_process(broker, monkeypatch)
    assert settings.consumer_fetch_wait_ms is None
    assert settings.topic_prefix == "bench1" and settings.app_id == "bench-engine"
