"""The Grafana dashboard and the alert rules only query metrics the code defines, under their exposed names.

The names come from the source: every ``Counter``/``Gauge``/``Histogram``/``Summary`` of prometheus-client
constructed in the first-party packages, expanded the way prometheus-client exposes them (a counter
``x`` or ``x_total`` is ``x_total``; a histogram ``x`` is ``x_bucket``, ``x_count`` and ``x_sum``). A
misspelt name, a counter without ``_total`` or a histogram queried without ``_bucket`` fails here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "rules", "models", "inference")
DASHBOARD = ROOT / "deploy" / "grafana" / "billwise-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# Series that do not come from Billwise code: Prometheus's own per-target series, its ALERTS series, and
# prometheus-client's process collector (registered on the default registry the worker serves).
EXTERNAL = {
    "up": "Prometheus, per scrape target",
    "ALERTS": "Prometheus, per active alert",
    "process_resident_memory_bytes": "prometheus-client ProcessCollector",
    "process_cpu_seconds_total": "prometheus-client ProcessCollector",
}

_KINDS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


# --------------------------------------------------------------------------------------------------
# Names defined in the code
# --------------------------------------------------------------------------------------------------


def _python_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def defined_metrics() -> dict[str, str]:
    """Metric name → kind, for every prometheus-client metric constructed in the first-party packages."""
    found: dict[str, str] = {}
    for path in _python_files():
        source = path.read_text()
        if "prometheus_client" not in source:
            continue  # collections.Counter and friends
        for node in ast.walk(ast.parse(source, str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            kind = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if kind not in _KINDS or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            name = first.value
            keywords = {k.arg: k.value for k in node.keywords}
            parts = [
                keywords[k].value
                for k in ("namespace", "subsystem")
                if isinstance(keywords.get(k), ast.Constant) and keywords[k].value  # type: ignore[union-attr]
            ]
            name = "_".join([*parts, name])
            unit = keywords.get("unit")
            if isinstance(unit, ast.Constant) and unit.value and not name.endswith(f"_{unit.value}"):
                name = f"{name}_{unit.value}"
            found[name] = kind
    return found


def exposed_names(defined: dict[str, str]) -> set[str]:
    """The series names prometheus-client exposes for the defined metrics."""
    names: set[str] = set()
    for name, kind in defined.items():
        if kind == "Counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"}
        elif kind == "Summary":
            names |= {name, f"{name}_count", f"{name}_sum", f"{name}_created"}
        elif kind == "Info":
            names.add(f"{name}_info")
        else:
            names.add(name)
    return names


# --------------------------------------------------------------------------------------------------
# Names a PromQL expression reads
# --------------------------------------------------------------------------------------------------

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "by",
    "without",
    "on",
    "ignoring",
}
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (or a Grafana label_values() query).

    >>> sorted(metric_names('sum by (le) (rate(x_bucket{job="a", l=~"b.*"}[5m])) / on(i) y offset 1h > 0.5'))
    ['x_bucket', 'y']
    >>> sorted(metric_names('histogram_quantile(0.99, sum by (le, s) (rate(h_bucket[$__rate_interval])))'))
    ['h_bucket']
    >>> sorted(metric_names('{__name__="z"} + 1e-9 or vector(0)'))
    ['z']
    >>> sorted(metric_names('label_values(up{job="billwise", a="b"}, instance)'))
    ['up']
    """
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    # Grafana's label_values(selector, label) and label_values(label): the label is not a metric.
    text = re.sub(r"\blabel_values\s*\(([^,()]*),\s*\w+\s*\)", r"(\1)", text)
    text = re.sub(r"\blabel_values\s*\(\s*\w+\s*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _LABEL_LISTS.sub(" ", text)  # grouping label lists
    text = re.sub(r"\boffset\s+-?\w+", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<![A-Za-z_:])\d[\w.]*(?:[eE][-+]?\d+)?", " ", text)  # numbers and durations
    for match in _IDENT.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def dashboard_exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, expression) for every query of the dashboard: panel targets and template variables."""

    def panels(items: list[dict]) -> Iterator[dict]:
        for item in items:
            yield item
            yield from panels(item.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query


def alert_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def unknown_names(exprs: Iterator[tuple[str, str]], known: set[str]) -> list[str]:
    return [
        f"{where}: {name}"
        for where, expr in exprs
        for name in sorted(metric_names(expr))
        if name not in known
    ]


@pytest.fixture(scope="module")
def known() -> set[str]:
    return exposed_names(defined_metrics()) | set(EXTERNAL)


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------


def test_the_scan_finds_the_engines_metrics_with_their_exposed_names() -> None:
    exposed = exposed_names(defined_metrics())
    for name in (
        "billwise_events_total",
        "billwise_dead_letters_total",
        "billwise_decisions_total",
        "billwise_suppressions_total",
        "billwise_decision_duration_seconds_bucket",
        "billwise_draft_latency_seconds_count",
        "billwise_draft_fallbacks_total",
        "billwise_llm_breaker_state",
        "billwise_consumer_lag_messages",
        "billwise_table_keys",
    ):
        assert name in exposed, name
    # A histogram has no series under its bare name; a counter none without _total.
    assert "billwise_decision_duration_seconds" not in exposed
    assert "billwise_decisions" not in exposed


def test_the_dashboard_parses_and_has_the_panels_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "billwise-overview" and dashboard["schemaVersion"] >= 36
    exprs = " ".join(expr for _, expr in dashboard_exprs(dashboard))
    for needed in (
        "billwise_events_total",
        "billwise_dead_letters_total",
        "billwise_decisions_total",
        "billwise_suppressions_total",
        "billwise_review_queue_depth",
        "billwise_review_oldest_age_seconds",
        "billwise_draft_latency_seconds_bucket",
        "billwise_draft_fallbacks_total",
        "billwise_model_roc_auc_ratio",
        "billwise_model_drift_detections_total",
        "billwise_consumer_lag_messages",
        "billwise_table_keys",
    ):
        assert needed in exprs, needed
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["refId"] and t["expr"].strip() for t in panel["targets"]), panel["title"]
            # Faust's own sensor reports milliseconds; every latency here is in seconds.
            assert panel["fieldConfig"]["defaults"].get("unit") != "ms", panel["title"]


def test_every_dashboard_query_reads_metrics_that_exist(known: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert unknown_names(dashboard_exprs(dashboard), known) == []


def test_every_alert_rule_reads_metrics_that_exist(known: set[str]) -> None:
    assert unknown_names(alert_exprs(), known) == []


def test_a_misspelt_or_wrongly_suffixed_metric_is_caught(known: set[str]) -> None:
    bad = [
        ("typo", 'sum(rate(billwise_decision_total{job="billwise"}[5m]))'),
        ("counter without _total", "rate(billwise_dead_letters[5m])"),
        ("histogram without _bucket", "histogram_quantile(0.99, rate(billwise_draft_latency_seconds[5m]))"),
        ("faust's millisecond sensor", "rate(billwise_events_runtime_ms[5m])"),
    ]
    assert len(unknown_names(iter(bad), known)) == len(bad)


def test_every_metric_name_follows_the_naming_guide() -> None:
    for name, kind in defined_metrics().items():
        assert name.startswith("billwise_"), name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert not name.endswith("_ms"), f"{name}: seconds, not milliseconds"
        if kind == "Counter" or name.endswith("_total"):
            assert kind == "Counter", f"{name}: only counters end in _total"


def test_the_promql_name_extractor_examples() -> None:
    import doctest
    import sys

    result = doctest.testmod(sys.modules[__name__], verbose=False)
    assert result.attempted >= 4 and result.failed == 0
