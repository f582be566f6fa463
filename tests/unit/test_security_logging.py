"""Structured JSON logs with PHI and secrets redacted (`streams.logging_config`)."""

from __future__ import annotations

import doctest
import io
import json
import logging
import logging.config

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streams.logging_config
from streams.logging_config import (
    REDACTED,
    JsonFormatter,
    PhiRedactingFilter,
    configure_logging,
    logging_dict_config,
    redact,
)


def test_doctests() -> None:
    result = doctest.testmod(streams.logging_config)
    assert result.failed == 0 and result.attempted > 0


@pytest.fixture
def captured() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PhiRedactingFilter())
    logger = logging.getLogger("billwise.test.security")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_a_line_with_time_level_logger_message_and_ids_only(captured) -> None:
    logger, stream = captured
    logger.info(
        "decided event %s",
        "evt-1",
        extra={"event_id": "evt-1", "account_id": "ACC-1", "offset": 7, "patient": {"given": ["Maria"]}},
    )
    logger.warning("second line")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message", "event_id", "account_id", "offset"}
    assert first["message"] == "decided event evt-1"
    assert first["level"] == "INFO" and first["logger"] == "billwise.test.security"
    assert first["time"].endswith("+00:00")
    assert "Maria" not in stream.getvalue()  # an extra that is not an id is not written
    assert second["level"] == "WARNING"


PHI_MESSAGES = [
    ("reminder for maria.lopez@example.com", "maria.lopez@example.com"),
    ("SMS to +1 (213) 555-0142 failed", "555-0142"),
    ("SMS to 213-555-0142 failed", "213-555-0142"),
    ("SMS to +12135550142 failed", "2135550142"),
    ("ssn 123-45-6789 on file", "123-45-6789"),
    ('patient {"given": ["Maria", "Elena"], "family": "Lopez"}', "Maria"),
    ('patient {"given": ["Maria", "Elena"], "family": "Lopez"}', "Lopez"),
    ("patient {'name': 'Maria Lopez', 'birth_date': '1980-02-03'}", "Maria Lopez"),
    ("patient {'name': 'Maria Lopez', 'birth_date': '1980-02-03'}", "1980-02-03"),
    ("update first_name=Maria last_name=Lopez", "Maria"),
    ("update first_name=Maria last_name=Lopez", "Lopez"),
    ("draft: Dear Maria Lopez, you owe $120.00", "Maria Lopez"),
    ("borrador: Hola Jose, su saldo", "Jose"),
    ('address {"line": ["12 Elm Street"], "city": "Austin"}', "12 Elm Street"),
]


@pytest.mark.parametrize(("message", "secret"), PHI_MESSAGES)
def test_patient_data_in_a_message_is_redacted(captured, message: str, secret: str) -> None:
    logger, stream = captured
    logger.info(message)
    assert secret not in stream.getvalue()
    assert REDACTED in lines(stream)[0]["message"]


@pytest.mark.parametrize(("message", "secret"), PHI_MESSAGES[:6])
def test_patient_data_passed_as_arguments_is_redacted(captured, message: str, secret: str) -> None:
    logger, stream = captured
    logger.info("payload %s", message)
    assert secret not in stream.getvalue()


def test_an_exception_message_and_traceback_are_redacted(captured) -> None:
    logger, stream = captured
    try:
        raise ValueError("cannot parse phone 213-555-0142 of maria@example.com")
    except ValueError:
        logger.exception("decision failed for event %s", "evt-9")
    (line,) = lines(stream)
    assert line["exc_type"] == "ValueError"
    assert "Traceback" in line["exc"]
    assert "213-555-0142" not in stream.getvalue() and "maria@example.com" not in stream.getvalue()


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("connecting with password=hunter2", "hunter2"),
        ("header Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("broker sasl_ssl://billwise:pa55@kafka:9093", "pa55"),
        ('config {"sasl_plain_password": "pa55word", "api_key": "k-123"}', "pa55word"),
        ('config {"sasl_plain_password": "pa55word", "api_key": "k-123"}', "k-123"),
        ("token=eyJhbGciOiJIUzI1NiJ9.x.y", "eyJhbGciOiJIUzI1NiJ9"),
    ],
)
def test_secrets_are_redacted(captured, message: str, secret: str) -> None:
    logger, stream = captured
    logger.error(message)
    assert secret not in stream.getvalue()


@pytest.mark.parametrize(
    "message",
    [
        "event evt-123 for account ACC-11-000652 decided at offset 42",
        "action act-10acd9f3ad32ea39fad031d3 held for review (R-REVIEW-BALANCE)",
        "[^----Agent*: streams.app.Engine._ingest]: Starting...",
        "Timer Monitor.sampler woke up too late, with a drift of +0.3s runtime=4.1e-05 sleeptime=1.3",
        "balance 1234.56 moved to 1000.00 on 2026-03-01T10:00:00Z",
    ],
)
def test_ids_amounts_and_framework_lines_are_kept(captured, message: str) -> None:
    logger, stream = captured
    logger.info(message)
    assert lines(stream)[0]["message"] == message


@settings(max_examples=200, deadline=None)
@given(
    user=st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True),
    domain=st.from_regex(r"[a-z]{2,10}\.(com|org|net|us)", fullmatch=True),
    area=st.integers(200, 999),
    exchange=st.integers(200, 999),
    line=st.integers(0, 9999),
    style=st.sampled_from(["{a}-{e}-{l}", "({a}) {e}-{l}", "+1{a}{e}{l}", "{a}.{e}.{l}", "+1 {a} {e} {l}"]),
    prefix=st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=20),
)
def test_any_email_or_us_phone_is_redacted(
    user: str, domain: str, area: int, exchange: int, line: int, style: str, prefix: str
) -> None:
    email = f"{user}@{domain}"
    phone = style.format(a=area, e=exchange, l=f"{line:04d}")
    text = redact(f"{prefix} contact {email} or {phone} today")
    assert email not in text
    assert f"{line:04d}" not in text.split("contact", 1)[1]


def test_logging_dict_config_through_mode_setup_logging(capsys: pytest.CaptureFixture[str]) -> None:
    """What the worker will pass to faust.Worker(logging_config=...): mode applies it as it is."""
    from mode.utils.logging import setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        setup_logging(loglevel="info", logging_config=logging_dict_config("info", stream="ext://sys.stdout"))
        logging.getLogger("faust.test").info("patient maria@example.com called from 213-555-0142")
        out = capsys.readouterr().out.strip().splitlines()
        record = json.loads(out[-1])
        assert record["logger"] == "faust.test"
        assert "maria@example.com" not in out[-1] and "555-0142" not in out[-1]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_configure_logging_replaces_the_root_handlers() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        handler = configure_logging("DEBUG", stream=stream)
        assert root.handlers == [handler]
        logging.getLogger("x").debug("hello %s", "maria@example.com")
        assert json.loads(stream.getvalue())["message"] == f"hello {REDACTED}"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
