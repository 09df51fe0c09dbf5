"""The CRM ribbon button's entry point: redirect to the BC record, or a small page saying why not."""

import azure.functions as func

from functions.http_util import api, context
from shared.api import ribbon
from shared.api.auth import check_user

bp = func.Blueprint()


@bp.route(route="crm/open", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@api
def crm_open(req: func.HttpRequest) -> func.HttpResponse:
    check_user(context().settings, req.headers)
    answer = ribbon.open_record(
        context(), req.params.get("entity"), req.params.get("id"), req.headers.get("accept-language")
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if answer.location:
        return func.HttpResponse(status_code=answer.status, headers={**headers, "Location": answer.location})
    headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return func.HttpResponse(answer.html, status_code=answer.status, mimetype="text/html", headers=headers)
