"""Kafka TLS and SASL settings from the environment, for aiokafka clients and for Faust.

=============================  ==========================================================================
variable                       meaning
=============================  ==========================================================================
``KAFKA_SECURITY_PROTOCOL``    ``PLAINTEXT`` (default), ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL``
``KAFKA_SASL_MECHANISM``       ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (default ``PLAIN`` with SASL)
``KAFKA_SASL_USERNAME``        SASL user (required with SASL)
``KAFKA_SASL_PASSWORD``        SASL password (required with SASL; never logged, never in ``repr``)
``KAFKA_SSL_CAFILE``           PEM bundle of the CA(s) that signed the brokers' certificates
                               (default: the system's trust store)
``KAFKA_SSL_CERTFILE``         client certificate (PEM) for mutual TLS, with ``KAFKA_SSL_KEYFILE``
``KAFKA_SSL_KEYFILE``          the client certificate's private key (PEM)
``KAFKA_SSL_KEY_PASSWORD``     the private key's password, if it has one (never logged)
``KAFKA_SSL_CHECK_HOSTNAME``   ``true`` (default) or ``false``: verify the broker's name against its
                               certificate (turn it off only for a test broker on an IP address)
=============================  ==========================================================================

Two views of the same settings:

* `kafka_client_kwargs` gives keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and
  ``AIOKafkaAdminClient`` (``security_protocol``, ``ssl_context``, ``sasl_mechanism``,
  ``sasl_plain_username``, ``sasl_plain_password``);
* `faust_security_settings` gives Faust app settings (``broker_credentials``: a `faust.SASLCredentials`
  or `faust.SSLCredentials`), to merge into ``faust.App(..., **settings)``.

TLS always verifies the broker's certificate (``CERT_REQUIRED``, TLS 1.2 at least); there is no switch
to turn verification off. SASL over ``SASL_PLAINTEXT`` sends the password in clear: it is accepted (a
private network may do it), and a warning that names the protocol (not the password) is logged once.
Errors name the variable that is wrong, never its value when the variable is a secret.

>>> kafka_client_kwargs({})
{'security_protocol': 'PLAINTEXT'}
>>> kwargs = kafka_client_kwargs({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
...     "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "billwise",
...     "KAFKA_SASL_PASSWORD": "s3cret"})
>>> sorted(kwargs)
['sasl_mechanism', 'sasl_plain_password', 'sasl_plain_username', 'security_protocol']
>>> security = KafkaSecurity.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u",
...     "KAFKA_SASL_PASSWORD": "s3cret"})
>>> "s3cret" in repr(security), "password=<set>" in repr(security), security.sasl_mechanism
(False, True, 'PLAIN')
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "KafkaSecurity",
    "KafkaSecurityError",
    "faust_security_settings",
    "kafka_client_kwargs",
]

log = logging.getLogger(__name__)

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
"""SASL mechanisms configurable from the environment (GSSAPI and OAUTHBEARER need code, not variables)."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_warned_cleartext = False


class KafkaSecurityError(ValueError):
    """The Kafka security variables are inconsistent or point at files that cannot be used."""


@dataclass(frozen=True)
class KafkaSecurity:
    """The parsed ``KAFKA_*`` security settings; ``repr`` shows whether secrets are set, not their values."""

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: str | None = field(default=None, repr=False)
    check_hostname: bool = True

    def __repr__(self) -> str:
        secret = {True: "<set>", False: "<unset>"}
        return (
            f"KafkaSecurity(protocol={self.protocol!r}, sasl_mechanism={self.sasl_mechanism!r}, "
            f"username={self.username!r}, password={secret[self.password is not None]}, "
            f"cafile={_str(self.cafile)}, certfile={_str(self.certfile)}, keyfile={_str(self.keyfile)}, "
            f"key_password={secret[self.key_password is not None]}, check_hostname={self.check_hostname})"
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Parse and check the variables (``env`` defaults to `os.environ`); raises `KafkaSecurityError`."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "")
            value = value.strip() if isinstance(value, str) else ""
            return value or None

        protocol = (get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper().replace("-", "_")
        if protocol not in PROTOCOLS:
            raise KafkaSecurityError(
                f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        sasl = protocol.startswith("SASL_")
        mechanism = get("KAFKA_SASL_MECHANISM")
        username = get("KAFKA_SASL_USERNAME")
        # A password is taken as it is (spaces may be part of it); only an empty one counts as unset.
        password = env.get("KAFKA_SASL_PASSWORD") or None
        if sasl:
            mechanism = (mechanism or "PLAIN").upper().replace("_", "-")
            if mechanism not in MECHANISMS:
                raise KafkaSecurityError(
                    f"KAFKA_SASL_MECHANISM={mechanism!r} is not one of {', '.join(MECHANISMS)}"
                )
            missing = [
                name
                for name, value in (("KAFKA_SASL_USERNAME", username), ("KAFKA_SASL_PASSWORD", password))
                if value is None
            ]
            if missing:
                raise KafkaSecurityError(f"{protocol} needs {' and '.join(missing)}")
        elif mechanism or username or password:
            raise KafkaSecurityError(
                f"KAFKA_SASL_* is set but KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SASL_SSL or SASL_PLAINTEXT"
            )

        files = {name: get(name) for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")}
        key_password = env.get("KAFKA_SSL_KEY_PASSWORD") or None
        tls = protocol in ("SSL", "SASL_SSL")
        if not tls and (any(files.values()) or key_password):
            raise KafkaSecurityError(
                f"KAFKA_SSL_* is set but KAFKA_SECURITY_PROTOCOL is {protocol}: use SSL or SASL_SSL"
            )
        if bool(files["KAFKA_SSL_CERTFILE"]) != bool(files["KAFKA_SSL_KEYFILE"]):
            raise KafkaSecurityError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (mutual TLS)")
        paths: dict[str, Path | None] = {}
        for name, value in files.items():
            path = Path(value) if value else None
            if path is not None and not path.is_file():
                raise KafkaSecurityError(f"{name} is not a readable file: {path}")
            paths[name] = path

        raw_check = (get("KAFKA_SSL_CHECK_HOSTNAME") or "true").lower()
        if raw_check not in _TRUE | _FALSE:
            raise KafkaSecurityError(f"KAFKA_SSL_CHECK_HOSTNAME={raw_check!r} is not true or false")

        return cls(
            protocol=cast(Protocol, protocol),
            sasl_mechanism=mechanism if sasl else None,
            username=username if sasl else None,
            password=password if sasl else None,
            cafile=paths["KAFKA_SSL_CAFILE"],
            certfile=paths["KAFKA_SSL_CERTFILE"],
            keyfile=paths["KAFKA_SSL_KEYFILE"],
            key_password=key_password,
            check_hostname=raw_check in _TRUE,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context that verifies the broker (``None`` without TLS)."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(self.cafile) if self.cafile else None
            )
            if self.certfile is not None and self.keyfile is not None:
                context.load_cert_chain(str(self.certfile), str(self.keyfile), password=self.key_password)
        except (ssl.SSLError, OSError) as exc:
            # The error class and the file names only: an SSLError can quote key material positions.
            raise KafkaSecurityError(
                f"cannot build the Kafka TLS context from {_str(self.cafile)}, {_str(self.certfile)}, "
                f"{_str(self.keyfile)}: {type(exc).__name__}"
            ) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = self.check_hostname
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        _warn_cleartext(self)
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs

    def faust_settings(self) -> dict[str, Any]:
        """Faust app settings: ``broker_credentials`` (empty for ``PLAINTEXT``)."""
        import faust

        _warn_cleartext(self)
        context = self.ssl_context()
        if self.uses_sasl:
            credentials: Any = faust.SASLCredentials(
                username=self.username,
                password=self.password,
                ssl_context=context,
                mechanism=self.sasl_mechanism,
            )
            return {"broker_credentials": credentials}
        if context is not None:
            return {"broker_credentials": faust.SSLCredentials(context)}
        return {}


def kafka_client_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments for the ``KAFKA_*`` security variables in ``env`` (default: the process's).

    Pass them to every ``AIOKafkaProducer``/``AIOKafkaConsumer``/``AIOKafkaAdminClient``
    the engine, the demo, the tools and the tests create. Raises `KafkaSecurityError` when the
    variables are inconsistent.
    """
    return KafkaSecurity.from_env(env).client_kwargs()


def faust_security_settings(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Faust app settings (``broker_credentials``) for the ``KAFKA_*`` security variables in ``env``."""
    return KafkaSecurity.from_env(env).faust_settings()


def _warn_cleartext(security: KafkaSecurity) -> None:
    global _warned_cleartext
    if security.protocol == "SASL_PLAINTEXT" and not _warned_cleartext:
        _warned_cleartext = True
        log.warning(
            "Kafka SASL over SASL_PLAINTEXT: the %s credentials cross the network unencrypted; "
            "use SASL_SSL outside a private network",
            security.sasl_mechanism,
        )


def _str(path: Path | None) -> str:
    return repr(str(path)) if path is not None else "None"
