"""Prometheus metrics of the engine (prefix ``billwise_``; seconds and ``_total`` per the naming guide).

Labels never carry account, patient or action ids: they are PHI-adjacent and unbounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("billwise_events_total", "Canonical events accepted, by event type", ["type"])
DAILY_SCANS = Counter(
    "billwise_daily_scans_total",
    "Daily scans of an account (catch-up before an event, or the timer's): run, or already done",
    ["result"],
)
DUPLICATES = Counter("billwise_duplicate_events_total", "Redelivered events applied once and skipped")
DEAD_LETTERS = Counter(
    "billwise_dead_letters_total", "Inputs sent to the dead-letter topic, by reason", ["reason"]
)
DECISIONS = Counter(
    "billwise_decisions_total", "Actions decided, by kind, channel and route", ["kind", "channel", "route"]
)
SUPPRESSIONS = Counter("billwise_suppressions_total", "Candidate actions suppressed, by gate", ["gate"])
DECISION_SECONDS = Histogram(
    "billwise_decision_duration_seconds",
    "Time to decide one event (state fold, use cases, gates, drafts)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
OUTCOMES = Counter("billwise_action_outcomes_total", "Sender outcomes received, by status", ["status"])
INPUT_RECORDS = Counter(
    "billwise_input_records_total",
    "Input records the ingest agent is done with (outputs acknowledged, states written), by topic",
    ["topic"],
)
SCAN_REQUESTS = Counter(
    "billwise_daily_scan_requests_total", "Scan request records the daily-scan timer sent"
)
SCAN_DAY = Gauge(
    "billwise_daily_scan_day_timestamp_seconds", "Start of the latest scan day the daily-scan timer requested"
)
GC_PAUSE_SECONDS = Histogram(
    "billwise_gc_pause_seconds",
    "Garbage-collection pauses of the worker process, by generation (2 is a full collection)",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
