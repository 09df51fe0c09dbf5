"""The CRM ribbon button's entry point: redirect to the BC record, or a small page saying why not."""

import azure.functions as func

from functions.http_util import api, context
from shared.api import ribbon
from shared.api.auth import RIBBON

bp = func.Blueprint()


def is_prefetch(headers) -> bool:
    """A speculative load (Sec-Purpose: prefetch, or the older Purpose / X-Moz headers), not a click.

    https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Purpose
    """
    values = (headers.get(h) or "" for h in ("sec-purpose", "purpose", "x-moz", "x-purpose"))
    return any("prefetch" in v.lower() or "prerender" in v.lower() for v in values)


@bp.route(route="crm/open", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api(roles=RIBBON)  # entra mode: Sync.Open is enough here
def crm_open(req: func.HttpRequest) -> func.HttpResponse:
    answer = ribbon.open_record(
        context(),
        req.params.get("entity"),
        req.params.get("id"),
        req.headers.get("accept-language"),
        prefetch=is_prefetch(req.headers),
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "Vary": "Sec-Purpose, Purpose"}
    if answer.html is None and answer.location is None:
        return func.HttpResponse(status_code=answer.status, headers={**headers, "Retry-After": "0"})
    if answer.location:
        return func.HttpResponse(status_code=answer.status, headers={**headers, "Location": answer.location})
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return func.HttpResponse(answer.html, status_code=answer.status, mimetype="text/html", headers=headers)
