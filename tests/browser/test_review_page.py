"""The review page in a real browser: Debian's chromium, driven by playwright-core (`review_page.mjs`),
against a real worker and broker. A billing manager signs in, approves one held action and rejects
another; the decisions must land on ``{prefix}.review.decisions``. Screenshots go to
``test-artifacts/browser/`` (gitignored; CI keeps them as artefacts).

Needs ``chromium`` (``apt-get install -y chromium``), ``node`` and ``npm`` (``npm ci`` in this folder,
done here on first use). A missing tool fails the test with the command that installs it: never skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_review_api import (  # noqa: F401 (staff_engine is a fixture)
    ROLE_TOKENS,
    USER_OF_ROLE,
    Events,
    StaffEngine,
    held_queue,
    staff_engine,
)

pytestmark = [pytest.mark.broker]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("BILLWISE_CHROMIUM", "/usr/bin/chromium")


def _tools() -> tuple[str, str]:
    """node and chromium, with playwright-core installed; fails with the fix when something is missing."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed: apt-get install -y nodejs npm")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci in {HERE} failed:\n{result.stderr[-2000:]}")
    return node, CHROMIUM


def test_a_billing_manager_approves_and_rejects_in_the_browser(staff_engine: StaffEngine) -> None:  # noqa: F811
    node, chromium = _tools()
    staff = staff_engine
    big, small = Events("ACC-BROWSER-BIG", staff.now), Events("ACC-BROWSER-SMALL", staff.now)
    staff.produce([big.patient(), big.account("7200.00"), small.patient(), small.account("800.00")])
    queue = held_queue(
        staff, {"ACC-BROWSER-BIG": {"payment_plan_offer"}, "ACC-BROWSER-SMALL": {"payment_plan_offer"}}
    )
    # The restricted one (over $5,000) is approved: only a billing manager or compliance officer may.
    approve_id = queue["ACC-BROWSER-BIG"]["payment_plan_offer"]["action"]["action_id"]
    reject_id = queue["ACC-BROWSER-SMALL"]["payment_plan_offer"]["action"]["action_id"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("review-page-*.png"):
        old.unlink()
    env = {
        **os.environ,
        "BASE_URL": staff.base_url,
        "TOKEN": ROLE_TOKENS["billing_manager"],
        "APPROVE_ACTION_ID": approve_id,
        "REJECT_ACTION_ID": reject_id,
        "ARTIFACT_DIR": str(ARTIFACTS),
        "CHROMIUM": chromium,
    }
    result = subprocess.run(
        [node, str(HERE / "review_page.mjs")], cwd=HERE, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"browser run failed:\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}"
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ok"] is True
    assert seen["plan_rows"] >= 1  # the plan options of the approved offer were on screen

    for name in ("review-page-action.png", "review-page-after.png"):
        shot = ARTIFACTS / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        assert shot.stat().st_size > 10_000

    decisions = {r.value["action_id"]: r for r in staff.read("review.decisions", until=2)}
    manager = {"user_id": USER_OF_ROLE["billing_manager"], "role": "billing_manager"}
    assert decisions[approve_id].value["decision"] == "approve"
    assert decisions[approve_id].value["reviewer"] == manager
    assert decisions[approve_id].value["note"] == "Approved in the browser test"
    assert decisions[approve_id].key == "ACC-BROWSER-BIG"
    assert decisions[reject_id].value["decision"] == "reject"
    assert decisions[reject_id].value["note"] == "Rejected in the browser test"
