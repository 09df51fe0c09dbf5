"""The CRM ribbon button: open the coupled BC record, coupling it first when the mapping allows.

Coupled → redirect to the BC web client. Not coupled, and the mapping has "Synch. Only Coupled
Records" off and direction Bidirectional or FromIntegrationTable → create the BC record from the CRM
record, couple, redirect. Otherwise a small localized page says why and how to couple. The redirect
target is built only from settings and BC data (never from the request), so it cannot be bent into
an open redirect.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from shared.api.errors import ApiError
from shared.api.i18n import negotiate
from shared.mappings import Mapping
from shared.mappings.entities import CRM_ENTITIES
from shared.model.status import Pass, Result
from shared.odata_filter import evaluate, parse
from shared.sync import actions
from shared.sync.records import bc_create_id

if TYPE_CHECKING:
    from shared.sync.context import SyncContext

# BC web client card pages and the field their filter uses.
BC_PAGES = {
    "customers": (21, "No.", "number"),
    "contacts": (5050, "No.", "number"),
    "items": (30, "No.", "number"),
    "resources": (76, "No.", "number"),
    "currencies": (5, "Code", "code"),
    "salespeoplePurchasers": (5116, "Code", "code"),
    "unitsOfMeasure": (209, "Code", "code"),
}
COUPLING_WAIT_SECONDS = 15
TRIGGER = "ribbon"  # the trigger of the runs it records
MESSAGES: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).parent / "ribbon_messages.json").read_text("utf-8")
)


@dataclass
class RibbonAnswer:
    status: int
    location: str | None = None
    html: str | None = None


def page(lang: str, key: str, **values: str) -> str:
    text = MESSAGES[lang]
    safe = {k: html.escape(v) for k, v in values.items()}
    body = html.escape(text[key].format(**{k: "{" + k + "}" for k in values})).format(**safe)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(text['title'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
        "color:#1b1b1b;line-height:1.5}h1{font-size:1.4rem}</style></head><body><main>"
        f"<h1>{html.escape(text['title'])}</h1><p>{body}</p><p>{html.escape(text['how'])}</p>"
        "</main></body></html>"
    )


def bc_url(ctx: SyncContext, m: Mapping, bc_record: dict[str, Any]) -> str:
    page_id, filter_field, source = BC_PAGES[m.bc_entity]
    s = ctx.settings
    company = ctx.bc.company_name()
    value = str(bc_record.get(source) or "").replace("'", "''")
    query = urlencode(
        {"company": company, "page": page_id, "filter": f"'{filter_field}' IS '{value}'"}, quote_via=quote
    )
    return (
        f"{s.bc_web_client_url}/{quote(s.bc_tenant_id, safe='')}/{quote(s.bc_environment, safe='')}/?{query}"
    )


def _coupled_answer(ctx: SyncContext, lang: str, m: Mapping, bc_id: str) -> RibbonAnswer:
    bc_record = ctx.bc.get(m.bc_entity, bc_id)
    if bc_record is None:
        return RibbonAnswer(200, html=page(lang, "missing"))
    return RibbonAnswer(302, location=bc_url(ctx, m, bc_record))


def _await_coupling(ctx: SyncContext, m: Mapping, crm_id: str, seconds: float = COUPLING_WAIT_SECONDS):
    """The coupling a concurrent click of the same record is making, once it exists (None after
    ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        c = ctx.couplings.get(m.name, crm_id=crm_id)
        if c is not None or time.monotonic() >= deadline:
            return c
        time.sleep(0.25)


def open_record(
    ctx: SyncContext,
    entity: str | None,
    record_id: str | None,
    accept_language: str | None,
    prefetch: bool = False,
) -> RibbonAnswer:
    """Open (coupling first when allowed) the BC record of a CRM record.

    Safe to repeat: the BC record is created through the engine's create path, whose BC id derives
    from the CRM id, so repeated or concurrent clicks create one record; a click that lost the race
    waits for the winner's coupling and opens the same record. A prefetch (``prefetch``) never
    creates anything: it is declined with 503 unless the record is coupled already.
    """
    lang = negotiate(accept_language)
    if not entity or not re.fullmatch(r"[a-z_]{1,64}", entity):
        raise ApiError(
            400, "InvalidEntity", "entity must be a Dataverse logical name such as account", "entity"
        )
    try:
        crm_id = str(uuid.UUID((record_id or "").strip("{}")))
    except ValueError:
        raise ApiError(400, "InvalidId", "id must be a GUID", "id") from None
    mappings = [m for m in ctx.mappings.all() if CRM_ENTITIES[m.crm_entity].logical_name == entity]
    if not mappings:
        return RibbonAnswer(200, html=page(lang, "no_mapping", entity=entity))
    for m in mappings:
        c = ctx.couplings.get(m.name, crm_id=crm_id)
        if c is not None:
            return _coupled_answer(ctx, lang, m, c.bc_id)
    if prefetch:
        return RibbonAnswer(503)  # browsers drop a non-2xx prefetch and load the page on the real click
    record = ctx.dataverse.get(mappings[0].crm_entity, crm_id)
    if record is None:
        raise ApiError(404, "RecordNotFound", f"no {entity} record {crm_id} in Dataverse", "id")
    eligible = [m for m in mappings if evaluate(parse(m.crm_filter), record)]
    if not eligible:
        return RibbonAnswer(200, html=page(lang, "filtered", mappings=", ".join(m.name for m in mappings)))
    m = eligible[0]
    if m.sync_only_coupled:
        return RibbonAnswer(200, html=page(lang, "only_coupled", mapping=m.name))
    if not m.allows(Pass.FROM_CRM):
        return RibbonAnswer(200, html=page(lang, "direction", mapping=m.name))
    outcome = actions.create_in_bc(ctx, m, record, TRIGGER)
    if outcome is None or outcome.result != Result.INSERTED:
        # A concurrent click may have won the create: its BC record (same id) exists, and its
        # coupling follows; then open that record. A failure of our own is shown at once.
        raced = ctx.bc.get(m.bc_entity, bc_create_id(m.name, crm_id)) is not None
        c = _await_coupling(ctx, m, crm_id, COUPLING_WAIT_SECONDS if raced else 0)
        if c is not None:
            return _coupled_answer(ctx, lang, m, c.bc_id)
        return RibbonAnswer(
            200, html=page(lang, "failed", error=(outcome.message if outcome else "unknown") or "")
        )
    bc_record = ctx.bc.get(m.bc_entity, outcome.destination_id)
    return RibbonAnswer(302, location=bc_url(ctx, m, bc_record or {}))
