"""Worker configuration from the environment (pydantic-settings).

Only what the shell needs lives here; drafting reads its own ``VLLM_*`` settings (`inference`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamSettings(BaseSettings):
    """Environment: ``KAFKA_BOOTSTRAP_SERVERS``, ``BILLWISE_*``."""

    model_config = SettingsConfigDict(env_prefix="BILLWISE_", extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="host:port[,host:port]",
    )
    topic_prefix: str = "billing"
    policy: Path | None = None
    app_id: str = "billwise"
    partitions: int = Field(default=8, ge=1, description="partitions of every topic this app creates")
    store: str = Field(default="rocksdb://", description="Faust table store: rocksdb:// or memory://")
    data_dir: Path = Path("billwise-data")
    rocksdb_write_buffer_mib: int = Field(
        default=4, ge=1, description="RocksDB memtable size per table partition (two are kept)"
    )
    rocksdb_block_cache_mib: int = Field(
        default=16, ge=1, description="RocksDB read cache per table partition"
    )
    parsed_state_cache_mib: int = Field(
        default=8,
        ge=0,
        description="memory for account states kept parsed between batches, about 250 accounts of 6 KB; "
        "each is ~100 objects every full garbage collection walks, so more pauses longer (0: parse every "
        "read; docs/performance.md)",
    )
    gc_gen0_threshold: int = Field(
        default=700,
        ge=1,
        description="allocations between the garbage collector's youngest collections (Python's default; "
        "5000 spends less CPU on collections but pauses longer, see streams.gc_tuning)",
    )
    producer_batch_kib: int = Field(
        default=256,
        ge=16,
        description="what the producer buffers per partition before a send waits for the batch to go "
        "out (aiokafka's 16 KiB made sends wait every ten outputs; see streams.app.faust_settings). Keep "
        "it below the topics' max.message.bytes (1 MiB by default in Kafka)",
    )
    consumer_fetch_wait_ms: int | None = Field(
        default=None,
        ge=1,
        description="longest time the broker may hold the worker's fetch when it has no new records "
        "(unset: Faust's 1500 ms). Tansu answers only when that time is up, even if records arrive "
        "meanwhile, so the demo sets 50",
    )
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    users_file: Path | None = None
    scan_clock: Literal["wall", "events", "off"] = Field(
        default="wall",
        description="the daily-scan timer's clock: the wall clock (production), the latest event time "
        "decided (replays, the demo, tests of a simulated past), or no timer",
    )
    scan_interval_s: float = Field(
        default=60.0, gt=0, description="how often the timer looks whether the scan day has changed"
    )
    model_learning: bool = Field(
        default=True, description="learn online from delayed labels (off: the checkpoint or the priors only)"
    )

    def topic(self, name: str) -> str:
        """The full name of a contract topic: ``events`` → ``billing.events``."""
        return f"{self.topic_prefix}.{name}"

    @property
    def broker_url(self) -> str:
        """Faust's broker URL list for the bootstrap servers."""
        return ";".join(f"kafka://{server.strip()}" for server in self.kafka_bootstrap_servers.split(","))
