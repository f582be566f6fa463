"""The demo's report: one JSON-ready dict (`build_report`), printed (`print_report`) or written as a
self-contained HTML file (`write_html`: inline CSS and SVG charts, no scripts or fonts from anywhere).

The HTML embeds the same dict as ``<script type="application/json" id="billwise-report-data">`` so a
test or a notebook can read the numbers back without scraping the page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from streams.kpis import KPI_ROWS, compare

if TYPE_CHECKING:
    from streams.demo import DemoConfig, EngineRun, PolicyRun

__all__ = ["SIMULATED_NOTICE", "build_report", "print_report", "render_html", "write_html"]

SIMULATED_NOTICE = (
    "Everything in this report is simulated. The practice, its patients, their balances and every reply "
    "to a message come from Billwise's patient-behaviour simulator (models/simulator.py), calibrated to "
    "published industry figures; no real patient data was used. The outcome KPIs compare two policies on "
    "the same simulated patients and seed: they show what the simulator's assumptions imply, not what "
    "any real practice would see."
)
BASELINE_DESCRIPTION = (
    "a fixed cadence: the practice's own statements every 30 days, a letter reminder at 60 and 90 days "
    "after the first statement while a balance remains, no payment plans or financial assistance offered."
)
ENGINE_DESCRIPTION = (
    "the worker decides on every event; the reference sender delivers released actions at or after "
    "their not_before; actions held for review are not sent (no reviewer in the demo)."
)
WORLDS_NOTE = (
    "Both worlds start from the same patients and seed. Once the policies differ, patients pay, take plans "
    "and dispute at different times, and the simulator's later draws (visits, claims, statements) drift "
    "apart a little, so the amounts billed differ slightly: compare the ratios."
)
KPI_DEFINITIONS = {
    "payment_yield_pct": "patient money collected in the window / patient responsibility billed in it "
    "(claims' patient share, self-pay charges and the opening balances)",
    "days_in_ar": "patient balances outstanding at the end / average patient responsibility billed per day",
    "contacts_per_1000": "outbound communications logged (statements, messages, letters, staff calls, "
    "failed attempts included) per $1,000 collected",
    "plan_share_pct": "accounts that received a statement and took a payment plan / accounts that "
    "received a statement",
    "inbound_per_100": "inbound calls and written replies per 100 accounts that received a statement "
    "(the inbound-call proxy)",
}
_LABELS = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _labels(text: str) -> dict[str, str]:
    return dict(_LABELS.findall(text))


def _sum_by(samples: Mapping[str, float], label: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for labels, value in samples.items():
        key = _labels(labels).get(label, "")
        out[key] = out.get(key, 0) + int(value)
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def build_report(
    *,
    config: DemoConfig,
    baseline: PolicyRun,
    engine_run: EngineRun,
    broker: str,
    prefix: str,
    metrics_url: str,
    wall_s: float,
    worker_ready_s: float,
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready data."""
    from models.simulator import DEFAULT_START

    engine = engine_run.engine
    metrics = engine_run.worker_metrics
    rows = compare(engine_run.world.kpis, baseline.kpis)
    end = DEFAULT_START + timedelta(days=config.days)
    return {
        "title": "Billwise demo report",
        "simulated": True,
        "simulated_notice": SIMULATED_NOTICE,
        "config": {
            "patients": config.patients,
            "days": config.days,
            "seed": config.seed,
            "start": DEFAULT_START.date().isoformat(),
            "end": end.date().isoformat(),
        },
        "run": {
            "broker": broker,
            "topic_prefix": prefix,
            "metrics_url": metrics_url,
            "wall_s": round(wall_s, 1),
            "worker_ready_s": round(worker_ready_s, 1),
            "events_streamed": engine_run.events_streamed,
            "baseline_events": baseline.tally.events,
            "outcomes_written": engine_run.outcomes_written,
            "records_read": engine_run.records_read,
            "audit_chain": engine_run.audit_chain,
            "worker_duplicates": int(sum(metrics.get("billwise_duplicate_events_total", {}).values())),
            "uncounted_inputs": engine_run.uncounted,
            "policy_versions": dict(engine_run.policy_versions),
        },
        "policies": {"engine": ENGINE_DESCRIPTION, "baseline": BASELINE_DESCRIPTION},
        "kpis": {"engine": engine_run.world.kpis.as_dict(), "baseline": baseline.kpis.as_dict()},
        "kpi_definitions": KPI_DEFINITIONS,
        "comparison": [
            {
                "key": row.spec.key,
                "label": row.spec.label,
                "unit": row.spec.unit,
                "better": row.spec.better,
                "headline": row.spec.headline,
                "engine": row.engine,
                "baseline": row.baseline,
                "delta": round(row.delta, 4),
                "verdict": row.verdict,
            }
            for row in rows
        ],
        "engine": engine.as_dict(),
        "actions_by_kind": engine.by_kind(),
        "sender": {
            **{k: v for k, v in sorted(engine_run.sender.stats.items())},
            "pending_at_end": engine_run.sender.pending,
            "replies": dict(engine_run.transport.replies.most_common()),
        },
        "worker_metrics": {
            "decisions_by_route": _sum_by(metrics.get("billwise_decisions_total", {}), "route"),
            "decisions_by_kind": _sum_by(metrics.get("billwise_decisions_total", {}), "kind"),
            "suppressions_by_gate": _sum_by(metrics.get("billwise_suppressions_total", {}), "gate"),
            "dead_letters_by_reason": _sum_by(metrics.get("billwise_dead_letters_total", {}), "reason"),
            "draft_fallbacks_by_reason": _sum_by(metrics.get("billwise_draft_fallbacks_total", {}), "reason"),
            "events_by_type": _sum_by(metrics.get("billwise_events_total", {}), "type"),
            "outcomes_by_status": _sum_by(metrics.get("billwise_action_outcomes_total", {}), "status"),
        },
        "outbound_by_channel": {
            "engine": dict(engine_run.world.tally.outbound.most_common()),
            "baseline": dict(baseline.tally.outbound.most_common()),
        },
        "policy_actions_sent": {
            "engine": dict(engine_run.world.actions_sent.most_common()),
            "baseline": dict(baseline.actions_sent.most_common()),
        },
        "series": {
            "engine_collected_cents": engine_run.world.collected_by_day,
            "baseline_collected_cents": baseline.collected_by_day,
        },
    }


# -- formatting ------------------------------------------------------------------------------------


def _fmt(value: float, unit: str) -> str:
    if unit == "$":
        return f"${value / 100:,.0f}"
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("days", "contacts"):
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _fmt_delta(value: float, unit: str) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    magnitude = abs(value)
    # A difference of two shares is in percentage points, not a percentage.
    return f"{sign}{magnitude:.1f} pt" if unit == "%" else sign + _fmt(magnitude, unit)


def _kinds_total(by_kind: Mapping[str, Mapping[str, int]]) -> list[tuple[str, int]]:
    return [(kind, sum(channels.values())) for kind, channels in by_kind.items()]


# -- terminal --------------------------------------------------------------------------------------


def print_report(console: Console, data: Mapping[str, Any]) -> None:
    """The report as rich tables."""
    config, run = data["config"], data["run"]
    console.print(Panel(data["simulated_notice"], title="simulated world", border_style="yellow"))
    kpis = Table(
        title=(
            f"Outcome KPIs: engine vs fixed-cadence baseline ({config['patients']:,} simulated patients, "
            f"{config['days']} days, seed {config['seed']})"
        )
    )
    for column, justify in (("KPI", "left"), ("engine", "right"), ("baseline", "right"), ("Δ", "right")):
        kpis.add_column(column, justify=justify)  # type: ignore[arg-type]
    kpis.add_column("")
    for row in data["comparison"]:
        style = {"better": "green", "worse": "red"}.get(row["verdict"], "")
        label = row["label"] if row["headline"] else f"[dim]{row['label']}[/]"
        kpis.add_row(
            label,
            _fmt(row["engine"], row["unit"]),
            _fmt(row["baseline"], row["unit"]),
            _fmt_delta(row["delta"], row["unit"]),
            f"[{style}]{row['verdict']}[/]" if style else row["verdict"],
        )
        if row["key"] == KPI_ROWS[4].key:
            kpis.add_section()
    console.print(kpis)
    console.print(f"[dim]{WORLDS_NOTE}[/]")

    engine = data["engine"]
    actions = Table(title="Actions by kind and channel (released + held for review)")
    actions.add_column("kind")
    channels = sorted({ch for per in data["actions_by_kind"].values() for ch in per})
    for channel in channels:
        actions.add_column(channel, justify="right")
    actions.add_column("total", justify="right")
    for kind, per in data["actions_by_kind"].items():
        actions.add_row(kind, *[f"{per.get(ch, 0):,}" for ch in channels], f"{sum(per.values()):,}")
    actions.caption = f"released {engine['released_total']:,}, held for review {engine['held_total']:,}"
    console.print(actions)

    side = Table(title="Held for review, suppressions, words, dead letters")
    side.add_column("what")
    side.add_column("count", justify="right")
    for reason, n in engine["held_reasons"].items():
        side.add_row(f"held: {reason}", f"{n:,}")
    side.add_section()
    for gate, n in engine["suppressed_by_gate"].items():
        side.add_row(f"suppressed: {gate}", f"{n:,}")
    for gate, n in engine["cancelled_by_gate"].items():
        side.add_row(f"cancelled after release or hold: {gate}", f"{n:,}")
    side.add_section()
    for source, n in engine["message_sources"].items():
        side.add_row(f"words from: {source}", f"{n:,}")
    for reason, n in engine["draft_fallbacks"].items():
        side.add_row(f"draft fell back to template: {reason}", f"{n:,}")
    if not engine["draft_fallbacks"] and "llm" not in engine["message_sources"]:
        side.add_row("[dim]no language model configured: approved templates only[/]", "")
    side.add_section()
    for reason, n in engine["dead_letters"].items():
        side.add_row(f"dead letter: {reason}", f"{n:,}")
    if not engine["dead_letters"]:
        side.add_row("dead letters", "0")
    console.print(side)

    sender = data["sender"]
    console.print(
        f"reference sender: {sender.get('delivered', 0):,} delivered to simulated patients, "
        f"{sender.get('expired', 0):,} expired, {sender.get('cancelled', 0):,} cancelled by the engine, "
        f"{sender.get('duplicate', 0):,} duplicates dropped, {sender.get('pending_at_end', 0):,} still "
        f"waiting at the end; {run['outcomes_written']:,} outcome records written"
    )
    if run.get("worker_duplicates") or run.get("uncounted_inputs"):
        console.print(
            f"[yellow]the worker counted {run.get('worker_duplicates', 0):,} input records as duplicates and "
            f"{run.get('uncounted_inputs', 0):,} not at all, though the demo sends every record once[/]"
        )
    console.print(
        f"{run['events_streamed']:,} events streamed in {run['wall_s']:.0f} s on {run['broker']}; "
        f"audit chain {run['audit_chain']}; policy {', '.join(run['policy_versions']) or '-'}"
    )


# -- HTML ------------------------------------------------------------------------------------------

_PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899")
_ENGINE_COLOUR, _BASELINE_COLOUR = "#2563eb", "#9ca3af"
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1060px;
color:#111827;padding:0 1rem;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.notice{background:#fef3c7;border:1px solid #f59e0b;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.muted{color:#6b7280;font-size:.92rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.95rem}
th,td{padding:.3rem .7rem;border-bottom:1px solid #e5e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.sub td{color:#6b7280}
.better{color:#047857;font-weight:600}.worse{color:#b91c1c;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:1.2rem}
.kpi-grid{display:grid;grid-template-columns:minmax(560px,1.4fr) minmax(440px,1fr);gap:1.2rem}
@media (max-width:1040px){.kpi-grid{grid-template-columns:1fr}}
figure{margin:0}figcaption{font-weight:600;margin-bottom:.3rem}
svg text{font-family:inherit;font-size:12px;fill:#374151}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _bar_chart(items: Sequence[tuple[str, float]], colour: str = _PALETTE[0], width: int = 460) -> str:
    """Horizontal bars with labels and values (inline SVG)."""
    if not items:
        return '<p class="muted">none</p>'
    label_w, row_h = 190, 22
    top = max(value for _, value in items) or 1
    height = row_h * len(items) + 6
    bars = []
    for i, (label, value) in enumerate(items):
        y = i * row_h + 3
        w = (width - label_w - 60) * value / top
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(label)[:32]}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}" rx="2"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{value:,.0f}</text>'
        )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(bars)
        + "</svg>"
    )


def _stacked_chart(by_kind: Mapping[str, Mapping[str, int]], width: int = 700) -> str:
    """One bar per kind, split by channel, with a legend (inline SVG)."""
    if not by_kind:
        return '<p class="muted">no actions</p>'
    channels = sorted({ch for per in by_kind.values() for ch in per})
    colours = {ch: _PALETTE[i % len(_PALETTE)] for i, ch in enumerate(channels)}
    label_w, row_h = 170, 24
    top = max(sum(per.values()) for per in by_kind.values()) or 1
    height = row_h * len(by_kind) + 34
    parts = []
    for i, (kind, per) in enumerate(by_kind.items()):
        y = i * row_h + 3
        x = float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(kind)}</text>')
        for channel in channels:
            count = per.get(channel, 0)
            if not count:
                continue
            w = (width - label_w - 70) * count / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 7}" '
                f'fill="{colours[channel]}"><title>{_e(kind)} by {_e(channel)}: {count:,}</title></rect>'
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{sum(per.values()):,}</text>')
    legend_y = len(by_kind) * row_h + 18
    lx = label_w
    for channel in channels:
        parts.append(
            f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" fill="{colours[channel]}"/>'
            f'<text x="{lx + 16}" y="{legend_y}">{_e(channel)}</text>'
        )
        lx += 24 + 8 * len(channel)
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(parts)
        + "</svg>"
    )


def _paired_bars(rows: Sequence[Mapping[str, Any]], width: int = 460) -> str:
    """Engine and baseline side by side for each headline KPI (each KPI on its own scale)."""
    label_w, block = 210, 46
    height = block * len(rows) + 24
    parts = []
    for i, row in enumerate(rows):
        y = i * block
        top = max(abs(row["engine"]), abs(row["baseline"])) or 1
        parts.append(f'<text x="0" y="{y + 14}">{_e(row["label"])[:40]}</text>')
        for j, (who, colour) in enumerate((("engine", _ENGINE_COLOUR), ("baseline", _BASELINE_COLOUR))):
            w = (width - label_w - 70) * abs(row[who]) / top
            yy = y + 18 + j * 13
            parts.append(
                f'<rect x="{label_w}" y="{yy}" width="{w:.1f}" height="11" fill="{colour}" rx="2"/>'
                f'<text x="{label_w + w + 4:.1f}" y="{yy + 10}">{_e(_fmt(row[who], row["unit"]))}</text>'
            )
    legend = height - 8
    parts.append(
        f'<rect x="0" y="{legend - 10}" width="12" height="12" fill="{_ENGINE_COLOUR}"/>'
        f'<text x="16" y="{legend}">engine</text>'
        f'<rect x="80" y="{legend - 10}" width="12" height="12" fill="{_BASELINE_COLOUR}"/>'
        f'<text x="96" y="{legend}">baseline</text>'
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(parts)
        + "</svg>"
    )


def _line_chart(series: Mapping[str, tuple[Sequence[int], str]], width: int = 700, height: int = 240) -> str:
    """Cumulative dollars by simulated day, one line per policy (inline SVG)."""
    longest = max((len(values) for values, _ in series.values()), default=0)
    if longest < 2:
        return '<p class="muted">too short to chart</p>'
    top = max((max(values) for values, _ in series.values() if values), default=0) or 1
    left, bottom, right, top_pad = 70, 28, 10, 10
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    parts = [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - right}" y2="{top_pad + plot_h}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}" stroke="#9ca3af"/>',
    ]
    for k in range(5):
        value = top * k / 4
        y = top_pad + plot_h - plot_h * k / 4
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">${value / 100:,.0f}</text>')
    for k in range(0, longest, max(1, longest // 6)):
        x = left + plot_w * k / (longest - 1)
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">day {k + 1}</text>')
    legend_x = left + 10
    for name, (values, colour) in series.items():
        points = " ".join(
            f"{left + plot_w * i / (longest - 1):.1f},{top_pad + plot_h - plot_h * v / top:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(
            f'<rect x="{legend_x}" y="{top_pad + 4}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 16}" y="{top_pad + 14}">{_e(name)}</text>'
        )
        legend_x += 110
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        + "".join(parts)
        + "</svg>"
    )


def _counts_table(counts: Mapping[str, int], first: str) -> str:
    if not counts:
        return '<p class="muted">none</p>'
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{v:,}</td></tr>" for k, v in counts.items())
    return f"<table><tr><th>{_e(first)}</th><th>count</th></tr>{rows}</table>"


def render_html(data: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    config, run, engine = data["config"], data["run"], data["engine"]
    rows = data["comparison"]
    kpi_rows = []
    for row in rows:
        verdict = row["verdict"]
        kpi_rows.append(
            f'<tr class="{"" if row["headline"] else "sub"}" data-kpi="{_e(row["key"])}">'
            f"<td>{_e(row['label'])}</td><td>{_e(_fmt(row['engine'], row['unit']))}</td>"
            f"<td>{_e(_fmt(row['baseline'], row['unit']))}</td>"
            f"<td>{_e(_fmt_delta(row['delta'], row['unit']))}</td>"
            f'<td class="{_e(verdict)}">{_e(verdict)}</td></tr>'
        )
    definitions = "".join(
        f"<dt>{_e(next(r['label'] for r in rows if r['key'] == key))}</dt><dd>{_e(text)}</dd>"
        for key, text in data["kpi_definitions"].items()
    )
    words = dict(engine["message_sources"])
    words_note = (
        "No language model was configured for this run, so every message is an approved template."
        if not engine["draft_fallbacks"] and "llm" not in words
        else "Drafts come from the self-hosted model; a draft failing a guardrail falls back to the template."
    )
    sender = data["sender"]
    outbound = data["outbound_by_channel"]
    channels = sorted(set(outbound["engine"]) | set(outbound["baseline"]))
    outbound_rows = "".join(
        f"<tr><td>{_e(ch)}</td><td>{outbound['engine'].get(ch, 0):,}</td>"
        f"<td>{outbound['baseline'].get(ch, 0):,}</td></tr>"
        for ch in channels
    )
    dead_table = _counts_table(engine["dead_letters"], "reason")
    collected_chart = _line_chart(
        {
            "Billwise": (data["series"]["engine_collected_cents"], _ENGINE_COLOUR),
            "baseline": (data["series"]["baseline_collected_cents"], _BASELINE_COLOUR),
        }
    )
    payload = json.dumps(data, sort_keys=True).replace("</", "<\\/")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(data["title"])}: simulated practice, {config["patients"]:,} patients, {config["days"]} days</title>
<style>{_CSS}</style></head><body>
<h1>{_e(data["title"])}</h1>
<p class="muted">{config["patients"]:,} simulated patients, {config["days"]} simulated days
({_e(config["start"])} to {_e(config["end"])}), seed {config["seed"]}; broker: {_e(run["broker"])};
run time {run["wall_s"]:.0f} s.</p>
<div class="notice" id="simulated"><strong>Simulated world.</strong> {_e(data["simulated_notice"])}</div>

<h2>Outcome KPIs: Billwise vs the fixed-cadence baseline</h2>
<p><strong>Billwise:</strong> {_e(data["policies"]["engine"])}<br>
<strong>Baseline:</strong> {_e(data["policies"]["baseline"])}</p>
<div class="kpi-grid"><div>
<table id="kpis"><tr><th>KPI</th><th>Billwise</th><th>baseline</th><th>Δ</th><th></th></tr>
{"".join(kpi_rows)}</table>
<p class="muted">{_e(WORLDS_NOTE)}</p></div>
<figure><figcaption>Headline KPIs</figcaption>{_paired_bars([r for r in rows if r["headline"]])}</figure>
</div>
<figure><figcaption>Collected so far, by simulated day</figcaption>
{collected_chart}</figure>
<dl class="muted">{definitions}</dl>

<h2>What the engine did</h2>
<figure><figcaption>Actions by kind and channel (released and held:
{engine["released_total"]:,} released, {engine["held_total"]:,} held for review)</figcaption>
{_stacked_chart(data["actions_by_kind"])}</figure>
<div class="grid">
<figure><figcaption>Held for review, by reason</figcaption>
{_bar_chart(list(engine["held_reasons"].items()), _PALETTE[1])}</figure>
<figure><figcaption>Suppressed before release, by gate</figcaption>
{_bar_chart(list(engine["suppressed_by_gate"].items()), _PALETTE[3])}</figure>
<figure><figcaption>Cancelled after release or while held, by gate</figcaption>
{_bar_chart(list(engine["cancelled_by_gate"].items()), _PALETTE[4])}</figure>
<figure><figcaption>Drafts vs templates (words of every action)</figcaption>
{_bar_chart(list(words.items()), _PALETTE[2])}
<p class="muted">{_e(words_note)}</p>
{_counts_table(engine["draft_fallbacks"], "template fallback reason")}</figure>
<figure><figcaption>Dead letters, by reason</figcaption>{dead_table}</figure>
<figure><figcaption>Outbound contacts logged, by channel</figcaption>
<table><tr><th>channel</th><th>Billwise</th><th>baseline</th></tr>{outbound_rows}</table></figure>
</div>

<h2>The reference sender</h2>
<p>{sender.get("delivered", 0):,} actions delivered to simulated patients at or after their
<code>not_before</code>; {sender.get("expired", 0):,} dropped as expired;
{sender.get("cancelled", 0):,} cancelled by the engine while they waited;
{sender.get("duplicate", 0):,} duplicates dropped; {sender.get("pending_at_end", 0):,} still waiting when the
simulation ended. {run["outcomes_written"]:,} <code>billing.action.outcome</code> records written.</p>
{_counts_table(sender.get("replies", {}), "simulated reply event")}

<h2>Run</h2>
<table>
<tr><td>events streamed (engine world)</td><td>{run["events_streamed"]:,}</td></tr>
<tr><td>events (baseline world, offline)</td><td>{run["baseline_events"]:,}</td></tr>
<tr><td>records read from the output topics</td>
<td>{_e(", ".join(f"{k}: {v:,}" for k, v in sorted(run["records_read"].items())))}</td></tr>
<tr><td>audit hash chain</td><td>{_e(run["audit_chain"])}</td></tr>
<tr><td>input records the worker counted as duplicates / not at all (the demo sends each once)</td>
<td>{run.get("worker_duplicates", 0):,} / {run.get("uncounted_inputs", 0):,}</td></tr>
<tr><td>policy version</td><td>{_e(", ".join(run["policy_versions"]))}</td></tr>
<tr><td>topic prefix</td><td>{_e(run["topic_prefix"])}</td></tr>
<tr><td>worker metrics (while it ran)</td><td>{_e(run["metrics_url"])}</td></tr>
<tr><td>worker ready in</td><td>{run["worker_ready_s"]:.1f} s</td></tr>
</table>
<script type="application/json" id="billwise-report-data">{payload}</script>
</body></html>
"""
    return body


def write_html(path: Path, data: Mapping[str, Any]) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path.resolve()
