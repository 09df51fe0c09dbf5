"""GET /api/portal — the admin portal: one HTML page with its CSS, JS and messages inlined at serve time.

Nothing secret is embedded: the page reads the function key from `?code=` in the browser. The inline
script runs under a per-response CSP nonce.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import azure.functions as func

from functions.http_util import api
from shared.api.i18n import LANGUAGES, negotiate
from shared.contracts import bc_entities, dataverse_tables

bp = func.Blueprint()
ROOT = Path(__file__).resolve().parent.parent / "portal"


def catalogue() -> dict[str, dict[str, list[str]]]:
    """Field names per entity on both sides (shared.contracts): the field-mapping editor's choices."""
    return {
        "bc": {name: sorted(e.properties) for name, e in bc_entities().items()},
        "crm": {name: sorted(t.properties) for name, t in dataverse_tables().items()},
    }


def render(lang: str, nonce: str) -> str:
    messages = {code: json.loads((ROOT / "i18n" / f"{code}.json").read_text("utf-8")) for code in LANGUAGES}
    page = {"lang": lang, "messages": messages, "catalogue": catalogue()}
    # "</" would end the inline script early; JSON allows "<\/".
    data = json.dumps(page, ensure_ascii=False).replace("</", "<\\/")
    html = (ROOT / "index.html").read_text("utf-8")
    return (
        html.replace("{{LANG}}", lang)
        .replace("{{NONCE}}", nonce)
        .replace("{{CSS}}", (ROOT / "app.css").read_text("utf-8"))
        .replace("{{DATA}}", data)
        .replace("{{JS}}", (ROOT / "app.js").read_text("utf-8"))
    )


@bp.route(route="portal", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api  # PORTAL_AUTH_MODE=entra: an Entra ID token with Sync.Admin as well (checked by @api)
def portal(req: func.HttpRequest) -> func.HttpResponse:
    nonce = secrets.token_urlsafe(18)
    lang = negotiate(req.headers.get("accept-language"))
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Language": lang,
        "Vary": "Accept-Language",
    }
    return func.HttpResponse(render(lang, nonce), status_code=200, mimetype="text/html", headers=headers)
