"""Prompts per action kind and language, grounded only in `DraftFacts`.

The model input is the account context (JSON, identity already tokenised) plus an instruction; the
output is JSON matching `DRAFT_SCHEMA`: ``subject``, ``body``, ``sms_body``, ``tone_tags``. Amounts are
given pre-formatted so the model can copy them exactly; disclosures and opt-out words are *not* asked
of the model: the engine appends the approved wording after drafting.

>>> from decimal import Decimal
>>> from inference.facts import DraftFacts
>>> from inference.tokeniser import PhiTokeniser
>>> msgs = build_messages(DraftFacts(kind="payment_reminder", channel="sms", patient_name="Ana Ruiz",
...                                  balance=Decimal("80")), PhiTokeniser())
>>> [m["role"] for m in msgs], "Ana" in msgs[1]["content"], "$80.00" in msgs[1]["content"]
(['system', 'user'], False, True)
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from inference.facts import DraftFacts
from inference.formatting import long_date, money
from inference.tokeniser import PhiTokeniser

PROMPT_VERSION = "draft-prompts.v1"
CONTEXT_MARKER = "ACCOUNT CONTEXT (JSON):"
INSTRUCTION_MARKER = "INSTRUCTION:"
SMS_DRAFT_MAX = 200
"""Characters the model may use for an SMS; the rest of the 320 is kept for disclosures and opt-out."""

ToneTag = Literal["friendly", "neutral", "empathetic", "informative", "reassuring", "formal", "grateful"]


class DraftJson(BaseModel):
    """What the model must return (validated after parsing; extra keys are a schema mismatch)."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=150)
    body: str = Field(min_length=1, max_length=3000)
    sms_body: str = Field(min_length=1, max_length=320)
    tone_tags: list[ToneTag] = Field(default_factory=list, max_length=5)


DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subject": {"type": "string", "maxLength": 150},
        "body": {"type": "string", "minLength": 1, "maxLength": 3000},
        "sms_body": {"type": "string", "minLength": 1, "maxLength": SMS_DRAFT_MAX},
        "tone_tags": {
            "type": "array",
            "items": {"type": "string", "enum": list(get_args(ToneTag))},
            "maxItems": 5,
        },
    },
    "required": ["subject", "body", "sms_body", "tone_tags"],
    "additionalProperties": False,
}
SCHEMA_NAME = "billwise_draft"

_SYSTEM = {
    "en": (
        "You write short, warm, plain-language billing messages for a US medical practice, in English. "
        "Rules you must follow:\n"
        "1. Use only the facts in the account context. Never invent or compute amounts, dates, names, "
        "phone numbers, links or deadlines; copy amounts exactly as written (for example $1,234.50).\n"
        "2. Values in square brackets such as [NAME_XXXXXXXX] are placeholders: copy them exactly, "
        "brackets included, and never alter them.\n"
        "3. Never threaten or imply lawsuits, courts, attorneys, arrest, wage garnishment, credit "
        "reporting, collection agencies or other consequences, and never create urgency (no 'final "
        "notice', 'immediately', 'act now').\n"
        "4. Never mention diagnoses, procedures, services, codes, medications or medical specialties.\n"
        "5. Do not add opt-out words, legal disclosures or a signature with contact details: the "
        "system adds them.\n"
        "6. 'body' is for email, portal or letter (or a call script for staff when the channel is "
        "phone); 'sms_body' is one or two sentences of at most "
        f"{SMS_DRAFT_MAX} characters, starting with the practice name, without the patient's name.\n"
        'Answer with JSON only: {"subject", "body", "sms_body", "tone_tags"}.'
    ),
    "es": (
        "Usted redacta mensajes de facturación breves, cordiales y en lenguaje sencillo para una "
        "consulta médica de EE. UU., en español. Reglas obligatorias:\n"
        "1. Use solo los datos del contexto de la cuenta. Nunca invente ni calcule montos, fechas, "
        "nombres, teléfonos, enlaces ni plazos; copie los montos tal como aparecen (por ejemplo "
        "$1,234.50).\n"
        "2. Los valores entre corchetes como [NAME_XXXXXXXX] son marcadores: cópielos exactamente, "
        "con los corchetes, sin cambiarlos.\n"
        "3. Nunca amenace ni insinúe demandas, tribunales, abogados, arrestos, embargos de salario, "
        "reportes de crédito, agencias de cobranza u otras consecuencias, y nunca cree urgencia (nada "
        "de 'último aviso', 'de inmediato', 'actúe ahora').\n"
        "4. Nunca mencione diagnósticos, procedimientos, servicios, códigos, medicamentos ni "
        "especialidades médicas.\n"
        "5. No agregue palabras para cancelar, avisos legales ni una firma con datos de contacto: el "
        "sistema los agrega.\n"
        "6. 'body' es para correo, portal o carta (o un guion de llamada para el personal si el canal "
        "es teléfono); 'sms_body' es una o dos oraciones de no más de "
        f"{SMS_DRAFT_MAX} caracteres, que empiezan con el nombre de la consulta, sin el nombre del "
        "paciente.\n"
        'Responda solo con JSON: {"subject", "body", "sms_body", "tone_tags"}.'
    ),
}

_REPLIES: dict[str, str] = {
    "balance": "state the current balance, any amount insurance is still reviewing and the last payment",
    "insurance": "explain each claim line: what was billed, what insurance paid, and the patient's share "
    "split into deductible, coinsurance, copay and not covered; then the balance",
    "payments": "list the payments received, with dates, then the balance",
    "how_to_pay": "state the balance and how to pay (patient portal or phone); mention interest-free plans",
    "plan_options": "list the plan options by number; ask the patient to reply with the number they choose",
    "plan_accepted": "confirm the chosen interest-free plan (the only plan option in the context)",
    "ask_household": "ask how many people live in the household, including the patient",
    "ask_income": "ask the household's total yearly income before taxes",
    "screening_result": "give the income as a share of the federal poverty guideline, the possible discount "
    "and its estimated amount, and say the application was sent to staff to review",
    "offer": "offer the settlement amount as payment in full of the balance if paid by its valid-until "
    "date; ask the patient to reply YES or say what they can pay",
    "final_offer": "say the settlement amount is the lowest the practice can accept as payment in full",
    "agreed": "confirm the agreed settlement amount and say staff will review and confirm it in writing "
    "before the patient pays",
    "no_agreement": "say the practice cannot accept that amount and staff will contact the patient",
    "negotiation_paused": "say a settlement cannot be discussed while the dispute is reviewed",
    "dispute": "thank the patient and say staff will review the account and contact them",
    "handoff": "say a member of the billing team will contact the patient",
    "cannot_answer": "say the question was passed to a member of the billing team, who will contact them",
}
"""What each conversation reply does, for the model (the approved templates say the same)."""

_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "statement_message": {
        "en": "Write a plain-language summary of the new statement: thank the patient for any recent "
        "payment in the context, state the balance and due date, explain that any insurance-pending "
        "amount is still being reviewed and may lower what they owe, and give next steps (portal, "
        "phone, payment plan, financial assistance).",
        "es": "Escriba un resumen sencillo del nuevo estado de cuenta: agradezca cualquier pago reciente "
        "del contexto, indique el saldo y la fecha de vencimiento, explique que el monto pendiente del "
        "seguro aún se revisa y podría reducir lo que debe, y dé los siguientes pasos (portal, teléfono, "
        "plan de pagos, asistencia financiera).",
    },
    "payment_plan_offer": {
        "en": "Offer the interest-free payment plan options listed in the context, each with its monthly "
        "amount, number of months, total and first due date, and explain how to choose one.",
        "es": "Ofrezca las opciones de plan de pagos sin intereses del contexto, cada una con su monto "
        "mensual, número de meses, total y primera fecha de pago, y explique cómo elegir una.",
    },
    "payment_reminder": {
        "en": "Write a friendly, low-pressure reminder about the open balance (or the plan payment if "
        "plan options are given), with the due date if given, and offer help: a plan or financial "
        "assistance.",
        "es": "Escriba un recordatorio amable y sin presión sobre el saldo pendiente (o el pago del plan "
        "si hay opciones de plan), con la fecha de vencimiento si la hay, y ofrezca ayuda: un plan o "
        "asistencia financiera.",
    },
    "assistance_invite": {
        "en": "Invite the patient to apply for financial assistance that could lower or remove the "
        "balance; say that applying is free and how to apply. Never suggest they might not qualify.",
        "es": "Invite al paciente a solicitar asistencia financiera que podría reducir o eliminar el "
        "saldo; diga que solicitarla es gratis y cómo hacerlo. Nunca sugiera que podría no calificar.",
    },
    "settlement_offer": {
        "en": "Present the settlement offer: the practice can accept the settlement amount as payment in "
        "full if paid by its valid-until date. State the current balance. Do not pressure.",
        "es": "Presente la oferta de liquidación: la consulta puede aceptar el monto de liquidación como "
        "pago total si se paga a más tardar en la fecha de validez. Indique el saldo actual. Sin presión.",
    },
    "short_pay_inquiry": {
        "en": "Thank the patient for the recent payment, say it was less than expected by the variance "
        "amount, state the remaining balance, and ask kindly whether the difference was intended.",
        "es": "Agradezca el pago reciente, diga que fue menor de lo esperado por el monto de la "
        "diferencia, indique el saldo restante y pregunte con amabilidad si la diferencia fue intencional.",
    },
    "staff_task": {
        "en": "Write a short call script for a billing staff member: an opening that confirms identity, "
        "the account facts to mention, and helpful options (payment, plan, financial assistance).",
        "es": "Escriba un guion de llamada breve para el personal de facturación: un saludo que confirme "
        "la identidad, los datos de la cuenta que debe mencionar y opciones útiles (pago, plan, "
        "asistencia financiera).",
    },
    "conversation_reply": {
        "en": "Write a short, courteous reply in the patient's billing conversation. What the reply must "
        "do is given as 'reply' in the context; say only that, using only the context's facts.",
        "es": "Escriba una respuesta breve y cortés en la conversación de facturación del paciente. Lo que "
        "debe hacer la respuesta está en 'reply' del contexto; diga solo eso, con los datos del contexto.",
    },
}


def account_context(facts: DraftFacts, tokeniser: PhiTokeniser) -> dict[str, Any]:
    """The facts as the model sees them: identity and dates as tokens, amounts formatted."""
    lang = facts.lang

    def day(d: Any) -> str | None:
        return None if d is None else tokeniser.token_for("DATE", d.isoformat(), long_date(d, lang))

    def amount(a: Any) -> str | None:
        return None if a is None else money(a)

    ctx: dict[str, Any] = {
        "kind": facts.kind,
        "channel": facts.channel,
        "language": lang,
        "practice_name": facts.practice_name,
        "patient_name": tokeniser.register("NAME", facts.patient_name) if facts.patient_name else None,
        "account_reference": tokeniser.register("ID", facts.account_id) if facts.account_id else None,
        "balance": amount(facts.balance),
        "insurance_pending": amount(facts.insurance_pending),
        "last_payment": (
            {"amount": amount(facts.last_payment_amount), "date": day(facts.last_payment_date)}
            if facts.last_payment_amount is not None
            else None
        ),
        "due_date": day(facts.due_date),
        "plan_options": [
            {
                "monthly_amount": amount(o.monthly_amount),
                "months": o.term_months,
                "total": amount(o.total),
                "first_due_date": day(o.first_due_date),
                "interest": "none (0% APR)",
            }
            for o in facts.plan_options
        ],
        "settlement": (
            {"amount": amount(facts.settlement.amount), "valid_until": day(facts.settlement.valid_until)}
            if facts.settlement is not None
            else None
        ),
        "payment_shortfall": amount(facts.variance),
        "reply": _REPLIES.get(facts.reply or ""),
        "claims": [
            {
                "payer": c.payer,
                "service_date": day(c.service_date),
                "billed": amount(c.billed),
                "insurance_paid": amount(c.insurance_paid),
                "patient_share": amount(c.patient_responsibility),
                "deductible": amount(c.deductible),
                "coinsurance": amount(c.coinsurance),
                "copay": amount(c.copay),
                "not_covered": amount(c.noncovered),
            }
            for c in facts.claims
        ],
        "payments": [{"amount": amount(p.amount), "date": day(p.on)} for p in facts.payments],
        "household_size": facts.household_size,
        "annual_income": amount(facts.annual_income),
        "fpl_percent": None if facts.fpl_pct is None else f"{facts.fpl_pct}%",
        "discount_percent": None if facts.discount_pct is None else f"{facts.discount_pct}%",
        "estimated_discount": amount(facts.estimated_discount),
    }
    return {k: v for k, v in ctx.items() if v not in (None, [], {})}


def build_messages(facts: DraftFacts, tokeniser: PhiTokeniser) -> list[dict[str, str]]:
    """Chat messages for the draft: the system rules and the user turn (context + instruction).

    The user turn is scrubbed once more as a whole, so nothing identifying that slipped into a
    free-text fact (a practice name with a phone number, say) leaves the engine either.
    """
    lang = facts.lang
    context = json.dumps(account_context(facts, tokeniser), ensure_ascii=False, indent=1)
    user = (
        f"{CONTEXT_MARKER}\n{context}\n\n{INSTRUCTION_MARKER}\n{_INSTRUCTIONS[facts.kind][lang]} "
        + ("Channel: SMS, so sms_body matters most." if facts.channel == "sms" else "")
    ).strip()
    return [
        {"role": "system", "content": _SYSTEM[lang]},
        {"role": "user", "content": tokeniser.scrub(user)},
    ]


def response_format() -> dict[str, Any]:
    """The OpenAI-style structured-output request field vLLM honours (``guided_json`` is gone)."""
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": DRAFT_SCHEMA, "strict": True},
    }
