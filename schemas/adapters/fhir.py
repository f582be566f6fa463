"""FHIR R4 (4.0.1) resources and Bundles to canonical events, parsed with ``fhir.resources``.

``fhir.resources`` 8.x models R5 by default and ships R4B (4.3.0) and STU3 subpackages, but no 4.0.1
models. The R4 official examples fail R5 validation (e.g. ``Coverage.payor``, ``PaymentNotice.provider``,
``Consent.provision`` as an object) and pass R4B validation, and the R4B definitions of every resource
mapped here are the R4 ones, so resources are validated with `fhir.resources.R4B`. JSON numbers are
read as `Decimal` before validation, so money never passes through ``float``.

A ``Bundle`` maps each ``entry.resource`` in order (paths ``entry[i].resource…``); an entry that deletes
(``request.method`` DELETE, or no resource) is an `AdapterError`, as is any resource with status
``entered-in-error`` (contract v1 cannot retract an event). ``urn:uuid`` references resolve through
the Bundle's ``fullUrl``s.

Identifier rule (see `schemas.adapters.base`): ``patient_id`` is the id of the Patient the resource
refers to (by ``subject``, ``patient``, ``beneficiary``, ``paymentIssuer`` or a Patient recipient or
sender, per resource below), ``account_id`` is ``fhir:<patient id>``; an R4 ``Account`` belongs to
the patient in its ``subject``, so charges that name an Account and events that name the patient meet
on one key. ``practice_id`` is ``fhir:Organization/<id>`` from the first Organization among the
resource's ``managingOrganization``/``owner``/``issuer``/``performingOrganization``/``provider``/
``payee``/``requestor``/``organization``/``sender``, else the caller's ``fhir/practice-<id>`` source,
else ``fhir:unknown``. Event time: ``meta.lastUpdated``, else the resource's own date (below), else
``received_at``; a date without a time is midnight UTC. Event ids: ``fhir:<type>:<id>:<versionId or
lastUpdated or digest>``.

Mapping per resource:

- ``Patient`` → ``billing.patient.updated``: official (else first) ``name``; ``birthDate``;
  ``telecom`` email, mobile phone (``use`` mobile) and home phone (E.164, US default region; others
  dropped); home (else first current) ``address``, a non-US ``state`` dropped; preferred
  ``communication.language``; ``deceased[x]``.
- ``Account`` → ``billing.account.updated`` only with a balance: R4 Account has no balance element, so
  the balance is read from the R5 cross-version extension
  ``http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance`` (sub-extensions
  ``aggregate``, ``amount``): the sum of the ``amount``s whose aggregate is ``patient`` or absent.
  Without it (as in the R4 examples) an Account gives nothing. ``status`` active/on-hold/unknown is
  ``open``, inactive ``closed``.
- ``Coverage`` → nothing. It says who pays (self-pay when ``type`` is ``coverage-selfpay#pay`` or the
  payor is the patient) but carries no balance, and ``billing.account.updated`` needs one; the
  engine learns self-pay from the platform that holds balances.
- ``ChargeItem`` (status ``billable``/``billed``) → ``billing.charge.posted``: ``priceOverride`` is the
  amount (R4 ChargeItem has no other price; one without it is an `AdapterError` since the price lives
  in a ChargeItemDefinition this adapter does not resolve); service date from ``occurrence[x]``;
  description from ``code``; provider from the first ``performer.actor``. Other statuses give nothing.
- ``Invoice`` (status ``issued``/``balanced``) → ``billing.statement.generated``: ``statement_date`` from
  ``date``; ``balance_due`` = ``totalGross`` (else ``totalNet``), 0 when ``balanced`` (paid);
  ``due_date`` = date + the days named in ``paymentTerms`` ("… 30 days …"), else 30 days (customary
  patient-statement terms; R4 Invoice has no due date). ``lines`` stay empty: R4 line items carry no
  service date, which the contract's statement line requires. Draft and cancelled give nothing.
- ``ExplanationOfBenefit`` → ``billing.claim.adjudicated``: amounts by adjudication category code
  (base ``submitted``, ``eligible``, ``benefit``, ``copay``, ``deductible``; CARIN ``coinsurance``,
  ``noncovered``, ``memberliability``) from ``total`` when present, else summed over the top-level
  ``item.adjudication``. billed = submitted (else the items' ``net``), insurance paid = benefit,
  allowed = eligible, breakdown = deductible/coinsurance/copay/noncovered, patient responsibility =
  memberliability, else the breakdown's sum, else allowed − paid when allowed exceeds paid.
  Adjustments are the item adjudications with an X12 CARC ``reason`` (PR for patient categories, CO
  otherwise). ``outcome`` error is denied, queued pending, complete/partial decided by the money.
  ``claim_id`` from ``claim``; payer from ``insurer``; service date from ``billablePeriod``, the items'
  ``serviced[x]``, else ``created``.
- ``PaymentReconciliation`` → ``billing.payment.posted`` when the payer is the patient
  (``paymentIssuer`` → Patient, as R5 allows): amount ``paymentAmount``, id ``paymentIdentifier``
  (else the resource id), posted ``paymentDate``; method other, channel in person (R4 records
  neither). An insurer remittance (``paymentIssuer`` an Organization, as in the R4 example) gives
  nothing: insurer money reaches the engine as EOB or 835 adjudications. One without
  ``paymentIssuer`` cannot be attributed and is an `AdapterError`.
- ``PaymentNotice`` → nothing: it only announces a PaymentReconciliation (mapped itself) and R4 gives
  it no payer or patient element, so it cannot be attributed to a patient account.
- ``Communication`` → ``billing.communication.logged`` when it is *with* the patient: outbound when a
  ``recipient`` is the Patient (or a RelatedPerson), inbound when the ``sender`` is; a message about
  the patient between others (as in the R4 example, a device paging a practitioner) gives nothing.
  Channel from ``medium`` (v3 ParticipationMode EMAILWRIT email; PHONE/VERBAL phone; ONLINEWRIT
  portal; MAILWRIT/WRITTEN/HANDWRIT/TYPEWRIT/FAXWRIT letter; text "SMS"/"text message" sms);
  outcome completed → delivered, not-done/stopped → failed, other statuses give nothing; ``at`` =
  ``sent`` (inbound: ``received``); ``text`` = payload string, inbound only.
- ``Consent`` → ``billing.consent.updated`` per contact channel the consent names (in ``category``,
  ``provision.code`` or ``provision.action``: email, sms/text message, phone/call, or all); granted =
  active and ``provision.type`` permit (inactive/rejected or deny: not granted); ``at`` = ``dateTime``.
  A consent that names no contact channel (a privacy or treatment consent, as in the R4 example) gives
  nothing: it is not permission to contact.
- Every other R4 resource type (AuditEvent, CommunicationRequest, Claim, Organization, …) is validated
  and gives nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.account import Account
from fhir.resources.R4B.chargeitem import ChargeItem
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.explanationofbenefit import ExplanationOfBenefit
from fhir.resources.R4B.invoice import Invoice
from fhir.resources.R4B.money import Money
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.paymentreconciliation import PaymentReconciliation
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from schemas.adapters.base import (
    UTC,
    ZERO,
    AdapterError,
    Adjustment,
    Context,
    Draft,
    Ids,
    address_data,
    adjudicated_status,
    claim_data,
    digest,
    draft,
    first,
    ids,
    join_path,
    language_tag,
    load_json,
    parse_money,
    parse_timestamp,
    patient_data,
    payment_data,
    practice_from_source,
    start_of_day,
)

PLATFORM = "fhir"
ACCOUNT_BALANCE_URL = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Account.balance"
CARC_SYSTEMS = frozenset(
    {
        "https://x12.org/codes/claim-adjustment-reason-codes",
        "http://x12.org/codes/claim-adjustment-reason-codes",
    }
)
DEFAULT_DUE_DAYS = 30
PATIENT_CATEGORIES = frozenset({"copay", "deductible", "coinsurance", "noncovered", "memberliability"})

_CHANNEL_BY_MODE = {
    "emailwrit": "email",
    "phone": "phone",
    "verbal": "phone",
    "onlinewrit": "portal",
    "mailwrit": "letter",
    "written": "letter",
    "handwrit": "letter",
    "typewrit": "letter",
    "faxwrit": "letter",
}


@dataclass(frozen=True)
class _Scope:
    """Where a resource sits and what the payload around it knows."""

    path: str
    raw: Mapping[str, Any]
    context: Context
    urls: Mapping[str, tuple[str, str]]
    """Bundle ``fullUrl`` → (resource type, id), for ``urn:uuid`` references."""

    def at(self, *keys: str | int) -> str:
        path = self.path
        for key in keys:
            path = join_path(path, key)
        return path


def map_payload(payload: bytes, context: Context) -> list[Draft]:
    """A FHIR R4 resource or Bundle (JSON) to drafts; see the module docstring."""
    document = load_json(payload)
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise AdapterError("a FHIR payload is a JSON object with a resourceType", "resourceType")
    if document["resourceType"] != "Bundle":
        return _resource(document, _Scope("", document, context, {}))
    _validate(document, "")  # the Bundle itself, entries included
    entries = document.get("entry") or []
    urls = _bundle_urls(entries)
    drafts: list[Draft] = []
    for index, entry in enumerate(entries):
        path = join_path("entry", index)
        request = entry.get("request") or {}
        if request.get("method") == "DELETE" or "resource" not in entry:
            raise AdapterError("a deletion has no canonical event in contract v1", join_path(path, "request"))
        resource_path = join_path(path, "resource")
        drafts.extend(_resource(entry["resource"], _Scope(resource_path, entry["resource"], context, urls)))
    return drafts


def _bundle_urls(entries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    urls = {}
    for entry in entries:
        resource = entry.get("resource") or {}
        if entry.get("fullUrl") and resource.get("id"):
            urls[entry["fullUrl"]] = (resource["resourceType"], resource["id"])
    return urls


def _model(document: object, path: str) -> Any:
    """The R4B model class of a JSON resource, or an `AdapterError` at ``path``."""
    kind = document.get("resourceType") if isinstance(document, Mapping) else None
    try:
        if not isinstance(kind, str):
            raise ValueError(kind)
        return get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise AdapterError(
            f"{kind!r} is not a FHIR R4 resource type", join_path(path, "resourceType")
        ) from None


def _check_nested(document: object, path: str) -> None:
    """Nested resources (contained, Bundle entries) must name a known type before validation:
    ``fhir.resources`` fails on an unknown nested ``resourceType`` with errors that name no field."""
    if not isinstance(document, Mapping):
        return
    for key in ("contained", "entry"):
        items = document.get(key)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            item_path = join_path(join_path(path, key), index)
            nested = item.get("resource") if key == "entry" and isinstance(item, Mapping) else item
            nested_path = join_path(item_path, "resource") if key == "entry" else item_path
            if key == "entry" and nested is None:
                continue
            _model(nested, nested_path)
            _check_nested(nested, nested_path)


def _validate(document: Mapping[str, Any], path: str) -> Resource:
    model = _model(document, path)
    _check_nested(document, path)
    try:
        return cast(Resource, model.model_validate(document))
    except (KeyError, TypeError) as exc:  # fhir.resources on a malformed nested resource
        raise AdapterError(
            f"invalid {document['resourceType']}: malformed nested resource ({exc})", path or None
        ) from None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = path
        for part in error["loc"]:
            where = join_path(where, part if isinstance(part, int) else str(part))
        raise AdapterError(f"invalid {document['resourceType']}: {error['msg']}", where or None) from None


def _resource(document: Mapping[str, Any], scope: _Scope) -> list[Draft]:
    resource = _validate(document, scope.path)
    status = getattr(resource, "status", None)
    if status == "entered-in-error":
        raise AdapterError(
            "an entered-in-error resource cannot be retracted in contract v1", scope.at("status")
        )
    if isinstance(resource, Patient):
        return [_patient(resource, scope)]
    if isinstance(resource, Account):
        return _account(resource, scope)
    if isinstance(resource, ChargeItem):
        return _charge(resource, scope)
    if isinstance(resource, Invoice):
        return _invoice(resource, scope)
    if isinstance(resource, ExplanationOfBenefit):
        return _eob(resource, scope)
    if isinstance(resource, PaymentReconciliation):
        return _reconciliation(resource, scope)
    if isinstance(resource, Communication):
        return _communication(resource, scope)
    if isinstance(resource, Consent):
        return _consent(resource, scope)
    return []  # Coverage, PaymentNotice and resources without billing facts: see the module docstring


# -- references, ids, times -------------------------------------------------------------------------


def _target(reference: Reference | None, scope: _Scope) -> tuple[str, str] | None:
    """(resource type, id) a reference points at, or ``None`` (contained, unresolvable, empty)."""
    if reference is None:
        return None
    text = reference.reference
    if text:
        if text in scope.urls:
            return scope.urls[text]
        parts = [part for part in text.split("/_history/")[0].split("/") if part]
        if len(parts) >= 2 and not text.startswith(("#", "urn:")):
            return parts[-2], parts[-1]
        return None
    if reference.identifier is not None and reference.identifier.value:
        return reference.type or "", reference.identifier.value
    return None


def _patient_of(scope: _Scope, candidates: Iterable[tuple[str, Reference | None]]) -> str:
    """The id of the first candidate reference that points at a Patient."""
    names = []
    for name, reference in candidates:
        names.append(name)
        target = _target(reference, scope)
        if target is not None and target[0] == "Patient":
            return target[1]
    raise AdapterError(
        "no reference to the Patient this resource is about", scope.at(names[0]) if names else None
    )


def _practice_of(scope: _Scope, candidates: Iterable[Reference | None]) -> str:
    for reference in candidates:
        target = _target(reference, scope)
        if target is not None and target[0] == "Organization":
            return f"Organization/{target[1]}"
    return practice_from_source(PLATFORM, scope.context.source) or "unknown"


def _who(scope: _Scope, patient: str, practices: Iterable[Reference | None]) -> Ids:
    return ids(PLATFORM, patient, _practice_of(scope, practices))


def _when(value: object, path: str) -> datetime | None:
    """A FHIR date, dateTime or instant (partial dates too) as a point in time."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}(-\d{2})?", value):
        year, _, month = value.partition("-")
        return start_of_day(date(int(year), int(month or 1), 1))
    return parse_timestamp(value, path, UTC)


def _day(value: object, path: str) -> date | None:
    """The calendar date of a FHIR date/dateTime, in its own offset; ``None`` for partial dates."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def _identity(resource: Resource, scope: _Scope) -> tuple[str, str, str]:
    meta = resource.meta
    version = first(
        [
            meta.versionId if meta else None,
            meta.lastUpdated.isoformat() if meta and isinstance(meta.lastUpdated, datetime) else None,
        ]
    )
    native_id = resource.id or digest(scope.raw)
    return resource.get_resource_type(), native_id, version or digest(scope.raw)


def _time(resource: Resource, scope: _Scope, *fallbacks: tuple[str, object]) -> datetime | None:
    meta = resource.meta
    if meta is not None and meta.lastUpdated is not None:
        return _when(meta.lastUpdated, scope.at("meta", "lastUpdated"))
    for name, value in fallbacks:
        moment = _when(value, scope.at(name))
        if moment is not None:
            return moment
    return None


# -- money and codes --------------------------------------------------------------------------------


class _Purse:
    """Reads Money values, checking they share one currency."""

    def __init__(self) -> None:
        self.currency: str | None = None

    def read(self, money: Money | None, path: str) -> Decimal | None:
        if money is None or money.value is None:
            return None
        amount = parse_money(money.value, join_path(path, "value"))
        currency = money.currency or "USD"
        if self.currency not in (None, currency):
            raise AdapterError(
                f"mixed currencies {self.currency} and {currency}", join_path(path, "currency")
            )
        self.currency = currency
        return amount

    def data(self) -> dict[str, str]:
        return {"currency": self.currency or "USD"}


def _words(concept: CodeableConcept | None) -> list[str]:
    """Lower-case codes and texts of a CodeableConcept."""
    if concept is None:
        return []
    words = [coding.code.lower() for coding in concept.coding or [] if coding.code]
    words += [coding.display.lower() for coding in concept.coding or [] if coding.display]
    if concept.text:
        words.append(concept.text.lower())
    return words


def _category_codes(concept: CodeableConcept | None) -> list[str]:
    """Lower-case codes (not displays or text) of a category, in order, without repeats."""
    if concept is None:
        return []
    return list(dict.fromkeys(coding.code.lower() for coding in concept.coding or [] if coding.code))


def _text_of(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return coding.display or coding.code
    return None


# -- resources --------------------------------------------------------------------------------------


def _patient(resource: Patient, scope: _Scope) -> Draft:
    if not resource.id:
        raise AdapterError("a Patient needs an id", scope.at("id"))
    who = _who(scope, resource.id, [resource.managingOrganization])
    names = resource.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    telecom = sorted(resource.telecom or [], key=lambda point: point.rank or 1_000_000)

    def contact(system: str, use: str | None) -> str | None:
        for point in telecom:
            if point.system == system and point.value and (use is None or point.use == use):
                return point.value
        return None

    addresses = [a for a in resource.address or [] if a.use != "old"]
    home = next((a for a in addresses if a.use == "home"), addresses[0] if addresses else None)
    languages = sorted(resource.communication or [], key=lambda c: not c.preferred)
    language = first(
        language_tag(code)
        for c in languages
        for code in [*(x.code for x in c.language.coding or []), c.language.text]
    )
    data = patient_data(
        given=" ".join(part for part in name.given or [] if part) if name else None,
        family=name.family if name else None,
        birth_date=_day(resource.birthDate, scope.at("birthDate")),
        email=contact("email", None),
        mobile_phone=contact("phone", "mobile") or contact("sms", None),
        home_phone=contact("phone", "home"),
        address=address_data(home.line or [], home.city, home.state, home.postalCode) if home else None,
        language=language or "en",
        flags={"deceased": bool(resource.deceasedBoolean) or resource.deceasedDateTime is not None},
    )
    return draft(
        "billing.patient.updated",
        who,
        _identity(resource, scope),
        data,
        scope.path,
        _time(resource, scope),
        {"birth_date": scope.at("birthDate"), "name": scope.at("name")},
    )


def _account(resource: Account, scope: _Scope) -> list[Draft]:
    purse = _Purse()
    balance: Decimal | None = None
    for index, extension in enumerate(resource.extension or []):
        if extension.url != ACCOUNT_BALANCE_URL:
            continue
        parts = {part.url: part for part in extension.extension or []}
        aggregate = _category_codes(parts["aggregate"].valueCodeableConcept) if "aggregate" in parts else []
        if aggregate and "patient" not in aggregate:
            continue
        amount = parts.get("amount")
        value = purse.read(amount.valueMoney if amount else None, scope.at("extension", index, "amount"))
        if value is not None:
            balance = (balance or ZERO) + value
    if balance is None:
        return []  # R4 Account has no balance: nothing to report
    patient = _patient_of(
        scope,
        [("subject", ref) for ref in resource.subject or []]
        + [("guarantor", g.party) for g in resource.guarantor or []],
    )
    who = _who(scope, patient, [resource.owner])
    data = {
        "balance": balance,
        "status": "closed" if resource.status == "inactive" else "open",
        **purse.data(),
    }
    return [
        draft(
            "billing.account.updated",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope),
            {"balance": scope.at("extension")},
        )
    ]


def _charge(resource: ChargeItem, scope: _Scope) -> list[Draft]:
    if resource.status not in ("billable", "billed"):
        return []
    purse = _Purse()
    amount = purse.read(resource.priceOverride, scope.at("priceOverride"))
    if amount is None:
        raise AdapterError(
            "without priceOverride the price is in a ChargeItemDefinition, which is not resolved",
            scope.at("priceOverride"),
        )
    occurrence = first(
        [
            resource.occurrenceDateTime,
            resource.occurrencePeriod.start if resource.occurrencePeriod else None,
            resource.enteredDate,
        ]
    )
    service_date = _day(occurrence, scope.at("occurrenceDateTime"))
    if service_date is None:
        raise AdapterError(
            "a charge needs a full service date in occurrence[x]", scope.at("occurrenceDateTime")
        )
    patient = _patient_of(scope, [("subject", resource.subject)])
    who = _who(scope, patient, [resource.performingOrganization, resource.requestingOrganization])
    performer = next((p.actor for p in resource.performer or []), None)
    provider_target = _target(performer, scope)
    data = {
        "charge_id": resource.id or digest(scope.raw),
        "service_date": service_date,
        "description": _text_of(resource.code) or "Charge",
        "amount": amount,
        "provider": (performer.display if performer and performer.display else None)
        or ("/".join(provider_target) if provider_target else None),
        **purse.data(),
    }
    return [
        draft(
            "billing.charge.posted",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope, ("enteredDate", resource.enteredDate)),
            {"amount": scope.at("priceOverride", "value"), "service_date": scope.at("occurrenceDateTime")},
        )
    ]


def _invoice(resource: Invoice, scope: _Scope) -> list[Draft]:
    if resource.status not in ("issued", "balanced"):
        return []
    statement_date = _day(resource.date, scope.at("date"))
    if statement_date is None:
        raise AdapterError("a statement needs a full date", scope.at("date"))
    purse = _Purse()
    total = first(
        [
            purse.read(resource.totalGross, scope.at("totalGross")),
            purse.read(resource.totalNet, scope.at("totalNet")),
        ]
    )
    if total is None:
        raise AdapterError("an invoice needs totalGross or totalNet", scope.at("totalGross"))
    terms = re.search(r"(\d{1,3})\s*days?", resource.paymentTerms or "", re.IGNORECASE)
    due_days = int(terms.group(1)) if terms else DEFAULT_DUE_DAYS
    patient = _patient_of(scope, [("subject", resource.subject), ("recipient", resource.recipient)])
    who = _who(scope, patient, [resource.issuer])
    data = {
        "statement_id": resource.id or digest(scope.raw),
        "statement_date": statement_date,
        "due_date": statement_date + timedelta(days=due_days),
        "balance_due": ZERO if resource.status == "balanced" else total,
        **purse.data(),
    }
    return [
        draft(
            "billing.statement.generated",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope, ("date", resource.date)),
            {"balance_due": scope.at("totalGross")},
        )
    ]


def _eob(resource: ExplanationOfBenefit, scope: _Scope) -> list[Draft]:
    if resource.status in ("draft", "cancelled"):
        return []
    purse = _Purse()
    totals: dict[str, Decimal] = {}
    for index, total in enumerate(resource.total or []):
        amount = purse.read(total.amount, scope.at("total", index, "amount"))
        for code in _category_codes(total.category):
            totals.setdefault(code, amount or ZERO)
    items: dict[str, Decimal] = {}
    adjustments: list[Adjustment] = []
    nets: list[Decimal] = []
    for i, item in enumerate(resource.item or []):
        net = purse.read(item.net, scope.at("item", i, "net"))
        if net is not None:
            nets.append(net)
        for j, adjudication in enumerate(item.adjudication or []):
            amount = purse.read(adjudication.amount, scope.at("item", i, "adjudication", j, "amount"))
            if amount is None:
                continue
            categories = _category_codes(adjudication.category)
            for code in categories:
                items[code] = items.get(code, ZERO) + amount
            for coding in (adjudication.reason.coding or []) if adjudication.reason else []:
                if coding.system in CARC_SYSTEMS and coding.code:
                    group = "PR" if PATIENT_CATEGORIES.intersection(categories) else "CO"
                    adjustments.append(Adjustment(group, coding.code, amount))

    def amount_of(code: str) -> Decimal | None:
        return totals[code] if code in totals else items.get(code)

    billed = first([amount_of("submitted"), sum(nets, ZERO) if nets else None])
    if billed is None:
        raise AdapterError(
            "an EOB needs a submitted total, item adjudications or item nets", scope.at("total")
        )
    paid = (
        first(
            [
                amount_of("benefit"),
                purse.read(resource.payment.amount, scope.at("payment", "amount"))
                if resource.payment
                else None,
            ]
        )
        or ZERO
    )
    allowed = amount_of("eligible")
    parts = {kind: amount_of(kind) or ZERO for kind in ("deductible", "coinsurance", "copay", "noncovered")}
    responsibility = first(
        [
            amount_of("memberliability"),
            sum(parts.values(), ZERO) if any(parts.values()) else None,
            allowed - paid if allowed is not None and allowed > paid else None,
        ]
    )
    responsibility = responsibility if responsibility is not None else ZERO
    outcome = resource.outcome
    status = {"error": "denied", "queued": "pending"}.get(
        outcome or "", adjudicated_status(paid, responsibility)
    )
    claim = _target(resource.claim, scope)
    insurer = _target(resource.insurer, scope)
    serviced = [
        first([item.servicedDate, item.servicedPeriod.start if item.servicedPeriod else None])
        for item in resource.item or []
    ]
    service_date = first(
        [
            _day(resource.billablePeriod.start, scope.at("billablePeriod"))
            if resource.billablePeriod
            else None,
            min((d for v in serviced if (d := _day(v, scope.at("item"))) is not None), default=None),
            _day(resource.created, scope.at("created")),
        ]
    )
    if service_date is None:
        raise AdapterError(
            "an EOB needs billablePeriod, item serviced[x] or created", scope.at("billablePeriod")
        )
    patient = _patient_of(scope, [("patient", resource.patient)])
    payee = resource.payee.party if resource.payee else None
    who = _who(scope, patient, [resource.provider, payee])
    data = claim_data(
        claim_id=claim[1] if claim else resource.id or digest(scope.raw),
        payer=resource.insurer.display or ("/".join(insurer) if insurer else "unknown payer"),
        service_date=service_date,
        billed=billed,
        insurance_paid=paid,
        adjustments=adjustments,
        patient_responsibility=responsibility,
        allowed=allowed,
        parts=parts,
        status=status,
    )
    data.update(purse.data())
    return [
        draft(
            "billing.claim.adjudicated",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope, ("created", resource.created)),
            {
                "billed": scope.at("total"),
                "patient_responsibility": scope.at("total"),
                "breakdown": scope.at("item"),
            },
        )
    ]


def _reconciliation(resource: PaymentReconciliation, scope: _Scope) -> list[Draft]:
    if resource.status == "cancelled":
        return []
    issuer = _target(resource.paymentIssuer, scope)
    if issuer is None:
        raise AdapterError(
            "no paymentIssuer: a payment cannot be attributed to a patient (name the Patient as issuer)",
            scope.at("paymentIssuer"),
        )
    if issuer[0] != "Patient":
        return []  # an insurer's remittance: insurer money arrives as EOB or 835 adjudications
    purse = _Purse()
    amount = purse.read(resource.paymentAmount, scope.at("paymentAmount"))
    if amount is None or amount <= 0:
        return []
    posted = _when(resource.paymentDate, scope.at("paymentDate")) or _when(
        resource.created, scope.at("created")
    )
    if posted is None:
        raise AdapterError("a payment needs paymentDate or created", scope.at("paymentDate"))
    who = _who(scope, issuer[1], [resource.requestor])
    identifier = resource.paymentIdentifier.value if resource.paymentIdentifier else None
    payment_id = identifier or resource.id or digest(scope.raw)
    data = {**payment_data(payment_id, amount, posted, "other"), **purse.data()}
    return [
        draft(
            "billing.payment.posted",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope, ("created", resource.created), ("paymentDate", resource.paymentDate)),
            {"amount": scope.at("paymentAmount", "value"), "posted_at": scope.at("paymentDate")},
        )
    ]


def _channel(concepts: Sequence[CodeableConcept]) -> str | None:
    words = [word for concept in concepts for word in _words(concept)]
    if any(re.search(r"\bsms\b|text messag", word) for word in words):
        return "sms"
    return next((_CHANNEL_BY_MODE[word] for word in words if word in _CHANNEL_BY_MODE), None)


def _communication(resource: Communication, scope: _Scope) -> list[Draft]:
    outcome = {"completed": "delivered", "not-done": "failed", "stopped": "failed"}.get(resource.status or "")
    if outcome is None:
        return []
    recipients = [_target(ref, scope) for ref in resource.recipient or []]
    sender = _target(resource.sender, scope)
    subject = _target(resource.subject, scope)
    if sender is not None and sender[0] in ("Patient", "RelatedPerson"):
        direction = "inbound"
    elif any(r is not None and r[0] in ("Patient", "RelatedPerson") for r in recipients):
        direction = "outbound"
    else:
        return []  # a communication about the patient between others, not with the patient
    patients = [t[1] for t in [subject, sender, *recipients] if t is not None and t[0] == "Patient"]
    if not patients:
        raise AdapterError("no reference to the Patient this communication is with", scope.at("subject"))
    channel = _channel(resource.medium or [])
    if channel is None:
        raise AdapterError("no medium that names a contact channel", scope.at("medium"))
    sent = _when(resource.sent, scope.at("sent"))
    received = _when(resource.received, scope.at("received"))
    at = (received or sent) if direction == "inbound" else (sent or received)
    if at is None:
        raise AdapterError("a communication needs sent or received", scope.at("sent"))
    text = next((p.contentString for p in resource.payload or [] if p.contentString), None)
    who = _who(scope, patients[0], [resource.sender, *(resource.recipient or [])])
    data = {
        "communication_id": resource.id or digest(scope.raw),
        "channel": channel,
        "direction": direction,
        "at": at,
        "outcome": outcome,
        "text": text if direction == "inbound" else None,
    }
    return [
        draft(
            "billing.communication.logged",
            who,
            _identity(resource, scope),
            data,
            scope.path,
            _time(resource, scope) or at,
            {"channel": scope.at("medium"), "at": scope.at("sent"), "text": scope.at("payload")},
        )
    ]


def _consent_channels(resource: Consent) -> list[str]:
    concepts: list[CodeableConcept] = list(resource.category or [])
    if resource.provision is not None:
        concepts += list(resource.provision.code or []) + list(resource.provision.action or [])
    words = [word for concept in concepts for word in _words(concept)]
    channels = []
    for channel, pattern in (
        ("all", r"\ball (contact )?channels\b|^all$"),
        ("email", r"e-?mail|emailwrit"),
        ("sms", r"\bsms\b|text messag"),
        ("phone", r"\bphone\b|telephone|\bcalls?\b"),
    ):
        if any(re.search(pattern, word) for word in words):
            channels.append(channel)
    return ["all"] if "all" in channels else channels


def _consent(resource: Consent, scope: _Scope) -> list[Draft]:
    if resource.status not in ("active", "inactive", "rejected"):
        return []
    channels = _consent_channels(resource)
    if not channels:
        return []  # a privacy or treatment consent, not permission to contact
    at = _when(resource.dateTime, scope.at("dateTime")) or _time(resource, scope)
    if at is None:
        raise AdapterError("a consent needs dateTime", scope.at("dateTime"))
    denied = resource.provision is not None and resource.provision.type == "deny"
    granted = resource.status == "active" and not denied
    patient = _patient_of(scope, [("patient", resource.patient)])
    who = _who(scope, patient, list(resource.organization or []))
    kind, native_id, version = _identity(resource, scope)
    return [
        draft(
            "billing.consent.updated",
            who,
            (kind, native_id, channel, version),
            {"channel": channel, "granted": granted, "at": at},
            scope.path,
            _time(resource, scope) or at,
            {"at": scope.at("dateTime"), "channel": scope.at("category")},
        )
        for channel in channels
    ]
