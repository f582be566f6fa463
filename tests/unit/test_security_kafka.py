"""Kafka TLS and SASL settings from the environment (`streams.kafka_security`); secrets never shown."""

from __future__ import annotations

import asyncio
import doctest
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import faust
import pytest

import streams.kafka_security
from streams.kafka_security import (
    KafkaSecurity,
    KafkaSecurityError,
    faust_security_settings,
    kafka_client_kwargs,
)

PASSWORD = "pa55-w0rd-never-logged"
SASL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "KAFKA_SASL_USERNAME": "billwise",
    "KAFKA_SASL_PASSWORD": PASSWORD,
}


def test_doctests() -> None:
    result = doctest.testmod(streams.kafka_security)
    assert result.failed == 0 and result.attempted > 0


def test_plaintext_by_default() -> None:
    assert kafka_client_kwargs({}) == {"security_protocol": "PLAINTEXT"}
    assert faust_security_settings({}) == {}


def test_sasl_ssl_for_aiokafka_and_faust() -> None:
    kwargs = kafka_client_kwargs(SASL)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert kwargs["sasl_plain_username"] == "billwise" and kwargs["sasl_plain_password"] == PASSWORD
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2

    credentials = faust_security_settings(SASL)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert PASSWORD not in repr(credentials)


def test_faust_turns_the_credentials_into_the_same_aiokafka_arguments() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    credentials = faust_security_settings(SASL)["broker_credentials"]
    auth = credentials_to_aiokafka_auth(credentials)
    ours = kafka_client_kwargs(SASL)
    for key in ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert auth[key] == ours[key]


def test_faust_app_accepts_the_settings() -> None:
    app = faust.App("kafka-security-test", broker="kafka://127.0.0.1:9", **faust_security_settings(SASL))
    assert app.conf.broker_credentials.username == "billwise"


def test_sasl_plaintext_warns_once_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    env = {**SASL, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"}
    streams.kafka_security._warned_cleartext = False
    with caplog.at_level(logging.DEBUG):
        kwargs = kafka_client_kwargs(env)
        kafka_client_kwargs(env)
    assert "ssl_context" not in kwargs and kwargs["sasl_mechanism"] == "PLAIN"
    assert len([r for r in caplog.records if "unencrypted" in r.getMessage()]) == 1
    assert PASSWORD not in caplog.text


def test_ssl_without_sasl() -> None:
    kwargs = kafka_client_kwargs({"KAFKA_SECURITY_PROTOCOL": "ssl"})
    assert kwargs["security_protocol"] == "SSL" and "sasl_mechanism" not in kwargs
    assert isinstance(faust_security_settings({"KAFKA_SECURITY_PROTOCOL": "SSL"})["broker_credentials"],
                      faust.SSLCredentials)  # fmt: skip


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({**SASL, "KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "KAFKA_SASL_MECHANISM"),
        ({**SASL, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD"),
        ({**SASL, "KAFKA_SASL_USERNAME": " "}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_PASSWORD": PASSWORD}, "KAFKA_SASL_*"),
        ({"KAFKA_SSL_CAFILE": "/etc/hostname"}, "KAFKA_SSL_*"),
        ({**SASL, "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE"),
        ({**SASL, "KAFKA_SSL_CERTFILE": "/etc/hostname"}, "KAFKA_SSL_KEYFILE"),
        ({**SASL, "KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "KAFKA_SSL_CHECK_HOSTNAME"),
    ],
)
def test_inconsistent_settings_name_the_variable_and_never_the_password(env: dict, names: str) -> None:
    with pytest.raises(KafkaSecurityError) as error:
        KafkaSecurity.from_env(env)
    assert names in str(error.value)
    assert PASSWORD not in str(error.value)


def test_repr_and_str_hide_the_secrets() -> None:
    security = KafkaSecurity.from_env({**SASL, "KAFKA_SSL_KEY_PASSWORD": "key-secret"})
    assert PASSWORD not in repr(security) and PASSWORD not in str(security)
    assert "key-secret" not in repr(security)
    assert "password=<set>" in repr(security)


# -- a real TLS handshake with a generated CA (needs the openssl command) ----------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("openssl") is None:  # .ci/run installs it: a missing one must not pass silently
        pytest.fail("the openssl command is needed to make test certificates (apt install openssl)")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=billwise-test-ca")  # fmt: skip
    for name in ("broker", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")  # fmt: skip
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")  # fmt: skip
    return {p.name: p for p in d.iterdir()}


async def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> bool:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        )
        data = await reader.read(2)
        writer.close()
        return data == b"ok"
    finally:
        server.close()
        await server.wait_closed()


def test_mutual_tls_context_verifies_the_broker_and_presents_the_client_certificate(pki) -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(pki["ca.pem"]),
        "KAFKA_SSL_CERTFILE": str(pki["client.pem"]),
        "KAFKA_SSL_KEYFILE": str(pki["client.key"]),
    }
    client = kafka_client_kwargs(env)["ssl_context"]
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca.pem"]))
    server.load_cert_chain(str(pki["broker.pem"]), str(pki["broker.key"]))
    server.verify_mode = ssl.CERT_REQUIRED  # the broker insists on a client certificate
    assert asyncio.run(_handshake(server, client))

    # Without the CA the broker's certificate is not trusted: no silent fallback to "accept anything".
    untrusting = kafka_client_kwargs({"KAFKA_SECURITY_PROTOCOL": "SSL"})["ssl_context"]
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(server, untrusting))


def test_an_unreadable_key_is_a_clear_error(pki, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CERTFILE": str(pki["client.pem"]),
        "KAFKA_SSL_KEYFILE": str(bad),
    }
    with pytest.raises(KafkaSecurityError, match="cannot build the Kafka TLS context"):
        kafka_client_kwargs(env)
