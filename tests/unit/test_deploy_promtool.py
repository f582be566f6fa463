"""`promtool` over the Prometheus deployment files: configs, alert rules and the rules' unit tests.

Needs Debian's ``prometheus`` package (``/usr/bin/promtool``); CI installs it (``.ci/run``). A missing
promtool fails these tests rather than skipping them, so CI can never pass without running them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = ROOT / "tests" / "deploy" / "alerts_test.yml"
CONFIGS = sorted(PROMETHEUS_DIR.glob("prometheus*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path="/usr/bin")
    if not found:
        pytest.fail("no promtool: apt-get install prometheus (Debian's package provides /usr/bin/promtool)")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_there_are_configs_for_compose_and_kubernetes() -> None:
    assert [c.name for c in CONFIGS] == ["prometheus-kubernetes.yml", "prometheus.yml"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_promtool_check_config(promtool: str, config: Path) -> None:
    result = _run(promtool, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_the_worker_job_is_named_billwise_and_loads_the_alert_rules(config: Path) -> None:
    loaded = yaml.safe_load(config.read_text())
    assert loaded["rule_files"] == ["alerts.yml"]
    assert "billwise" in {job["job_name"] for job in loaded["scrape_configs"]}


def test_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules(promtool: str) -> None:
    result = _run(promtool, "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {
        rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    }
    cases = [
        case
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts == fires, f"alerts without a firing case: {alerts - fires}"
    assert alerts == quiet, f"alerts without a quiet case: {alerts - quiet}"


def test_a_wrong_expectation_makes_promtool_fail(promtool: str, tmp_path: Path) -> None:
    """The harness is not vacuous: promtool reports a failed expectation through its exit status."""
    wrong = RULE_TESTS.read_text().replace("is 17000 messages", "is 17001 messages")
    assert wrong != RULE_TESTS.read_text()
    copy = tmp_path / "alerts_test.yml"
    copy.write_text(wrong.replace("../../deploy/prometheus/alerts.yml", str(ALERTS)))
    result = _run(promtool, "test", "rules", str(copy))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
