"""Prometheus metrics of drafting (default registry, served by the worker's ``GET /metrics``).

- ``billwise_draft_latency_seconds{source}``: histogram of one `Drafter.draft`, ``source`` = ``llm``
  when the model draft was used, ``template`` otherwise.
- ``billwise_draft_fallbacks_total{reason}``: drafts that fell back to the template, by reason.
- ``billwise_llm_requests_in_flight``: model requests being sent or awaited right now.
- ``billwise_llm_requests_total{outcome}``: model requests by outcome (``ok``, ``timeout``, ...).
- ``billwise_llm_breaker_state``: circuit breaker state, 0 closed, 1 half-open, 2 open.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DRAFT_LATENCY = Histogram(
    "billwise_draft_latency_seconds",
    "Time to produce the words of one action (model draft or template fallback).",
    ["source"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
)
DRAFT_FALLBACKS = Counter(
    "billwise_draft_fallbacks_total",
    "Drafts that used the approved template instead of the model, by reason.",
    ["reason"],
)
LLM_IN_FLIGHT = Gauge("billwise_llm_requests_in_flight", "Requests to the language model server in flight.")
LLM_REQUESTS = Counter(
    "billwise_llm_requests_total", "Requests to the language model server, by outcome.", ["outcome"]
)
BREAKER_STATE = Gauge(
    "billwise_llm_breaker_state",
    "Circuit breaker in front of the model server: 0 closed, 1 half-open, 2 open.",
)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
