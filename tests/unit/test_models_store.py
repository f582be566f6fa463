"""Checkpoints restore the same predictions, and refuse what they cannot read safely."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import river

from models import store
from models.evaluate import evaluate
from models.propensity import PropensityModel
from models.risk import RiskModel
from models.store import CheckpointError, CheckpointVersionError, dumps, header, loads, restore


@pytest.fixture(scope="module")
def trained() -> PropensityModel:
    model = PropensityModel()
    evaluate(events=4_000, seed=5, model=model)
    assert model.labels > 100
    return model


SAMPLE: list[dict[str, float]] = [
    {"log_balance": 4.0, "debt_age_months": 1.0, "has_paid": 1.0, "portal_enrolled": 1.0},
    {"log_balance": 7.5, "debt_age_months": 5.0, "months_since_payment": 12.0},
    {"log_balance": 6.0, "debt_age_months": 2.0, "engagement_rate_180d": 0.5, "contacts_90d": 3.0},
]


def test_a_checkpoint_restores_the_same_predictions(trained: PropensityModel) -> None:
    blob = dumps(trained, kind="propensity")
    restored = loads(blob, kind="propensity")
    assert [restored.score(x) for x in SAMPLE] == [trained.score(x) for x in SAMPLE]
    assert restored.model_version == trained.model_version
    head = header(blob)
    assert head["river"] == river.__version__
    assert head["kind"] == "propensity"
    assert head["model_version"] == trained.model_version


def test_a_restored_model_resumes_learning_where_it_was(trained: PropensityModel) -> None:
    restored = restore(dumps(trained, kind="propensity"), PropensityModel, kind="propensity")
    original = pickle.loads(pickle.dumps(trained))
    for model in (restored, original):
        model.learn(SAMPLE[0], True)
        model.learn(SAMPLE[1], False)
    assert [restored.score(x) for x in SAMPLE] == [original.score(x) for x in SAMPLE]


def test_cold_start_when_nothing_is_stored() -> None:
    model = restore(None, RiskModel, kind="risk")
    assert model.labels == 0
    assert model.score(SAMPLE[1]) == model.prior(SAMPLE[1])


def test_another_river_version_is_refused_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.river, "__version__", "0.21.0")
    blob = dumps(PropensityModel(), kind="propensity")
    monkeypatch.undo()
    with pytest.raises(CheckpointVersionError, match=r"river 0\.21\.0.*river 0\.26\.1"):
        loads(blob)
    with pytest.raises(CheckpointVersionError):
        restore(blob, PropensityModel, kind="propensity")  # not silently replaced by a cold start


def _tamper(blob: bytes, **changes: Any) -> bytes:
    import json

    size = int.from_bytes(blob[6:10], "big")
    head = json.loads(blob[10 : 10 + size])
    head.update(changes)
    raw = json.dumps(head).encode()
    return blob[:6] + len(raw).to_bytes(4, "big") + raw + blob[10 + size :]


def test_corrupt_foreign_or_mismatched_bytes_are_refused() -> None:
    blob = dumps(PropensityModel(), kind="propensity")
    with pytest.raises(CheckpointError, match="not a Billwise"):
        loads(b"hello")
    with pytest.raises(CheckpointError, match="checksum"):
        loads(blob[:-3] + b"xyz")
    with pytest.raises(CheckpointError, match="not 'risk'"):
        loads(blob, kind="risk")
    with pytest.raises(CheckpointVersionError, match="format"):
        loads(_tamper(blob, format=99))
