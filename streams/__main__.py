"""``python -m streams`` is ``billwise``."""

from streams.cli import app

app()
