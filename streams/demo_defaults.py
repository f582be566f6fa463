"""What ``billwise demo`` runs when not told otherwise.

Kept apart from `streams.demo`, whose imports take about two seconds, so that the CLI can show these
in its help without loading the demo.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_PATIENTS = 2_000
"""Five to six minutes on Tansu on a 2-core machine (about 30,300 events, with the daily scans of every
account)."""
DEFAULT_DAYS = 180
DEFAULT_SEED = 7
DEFAULT_REPORT = Path("billwise-report.html")
