"""The command line: ``billwise decide`` prints what the core decides; ``schema export --check``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from rules.outputs import Output
from rules.policy import load_policy
from rules.usecases import SCAN_EVENT_TYPE
from schemas.actions import Action
from streams.cli import app
from streams.offline import decide_lines
from tests.samples import later_payment

SAMPLE = Path("streams/sample_events.jsonl")
runner = CliRunner()


def test_decide_prints_one_json_object_a_line_matching_the_core() -> None:
    result = runner.invoke(app, ["decide", "--events", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [output.as_line() for output in decide_lines(SAMPLE.read_bytes().splitlines(), load_policy())]
    assert _without_receipt_time(printed) == _without_receipt_time(json.loads(json.dumps(expected)))
    topics = {line["topic"] for line in printed}
    assert {"billing.actions", "billing.review", "billing.audit", "billing.dlq"} <= topics
    for line in printed:
        assert line["key"] == (line["value"].get("account_id") or line["value"].get("key"))


def _without_receipt_time(lines: list[dict]) -> list[dict]:
    """Dead letters carry the wall-clock receipt time; everything else is a function of the input."""
    for line in lines:
        line["value"].pop("received_at", None)
    return lines


def test_decide_reads_stdin() -> None:
    result = runner.invoke(app, ["decide", "--events", "-"], input=SAMPLE.read_text())
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) > 4


def test_a_redelivered_event_yields_no_second_action() -> None:
    lines = SAMPLE.read_bytes().splitlines()
    statement = next(line for line in lines if b"statement.generated" in line)
    outputs = list(decide_lines([*lines, statement, statement], load_policy()))
    action_ids = [o.value.action_id for o in outputs if o.topic in ("actions", "review")]  # type: ignore[attr-defined]
    assert len(action_ids) == len(set(action_ids))


def test_schema_check_passes_on_the_checked_in_files() -> None:
    result = runner.invoke(app, ["schema", "export", "--check"])
    assert result.exit_code == 0, result.output


def test_replay_shows_what_another_policy_would_have_decided(tmp_path: Path) -> None:
    default = Path("rules/policies/default.yaml").read_text()
    assert 'balance_over: "5000.00"' in default
    strict = tmp_path / "strict.yaml"
    strict.write_text(default.replace('balance_over: "5000.00"', 'balance_over: "100.00"'))
    result = runner.invoke(app, ["replay", "--policy", str(strict), "--events", str(SAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    diff = json.loads(result.stdout)
    routes = {change["action_id"]: change for change in diff["changed"]}
    assert routes, "a lower review threshold holds more actions"
    assert all("review_reasons" in change["fields"] for change in routes.values())


def _scanned_accounts(outputs: list[Output]) -> set[str]:
    return {
        o.value.account_id
        for o in outputs
        if isinstance(o.value, Action) and o.value.trigger.type == SCAN_EVENT_TYPE
    }


def test_a_day_boundary_scans_accounts_that_had_no_event_of_their_own() -> None:
    """Statements go out; weeks later only one account has an event. The others are still scanned (the
    worker's daily-scan timer), so an unanswered statement gets its follow-up."""
    lines = [*SAMPLE.read_bytes().splitlines(), json.dumps(later_payment(days=40)).encode()]
    with_timer = decide_lines(lines, load_policy())
    event_driven_only = decide_lines(lines, load_policy(), idle_scans=False)
    idle = _scanned_accounts(with_timer) - _scanned_accounts(event_driven_only)
    assert idle and "ACC-1002" not in idle
    # Everything the event-driven run decided is still decided: the timer only adds.
    ids = {o.value.action_id for o in with_timer if isinstance(o.value, Action)}
    assert {o.value.action_id for o in event_driven_only if isinstance(o.value, Action)} <= ids


def test_decide_prints_the_same_lines_in_the_same_order_whatever_the_hash_seed(tmp_path: Path) -> None:
    """A replay must be reproducible: nothing in the output order may come from a set's order."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(SAMPLE.read_bytes() + json.dumps(later_payment(days=40)).encode() + b"\n")
    printed = []
    for seed in ("1", "3"):  # two seeds that ordered a set differently here
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-m", "streams", "decide", "--events", str(events)]
        run = subprocess.run(command, env=env, capture_output=True, check=True)
        printed.append(_without_receipt_time([json.loads(line) for line in run.stdout.splitlines()]))
    assert printed[0] == printed[1]
    assert any(line["value"].get("trigger", {}).get("type") == SCAN_EVENT_TYPE for line in printed[0])
