"""GET /api/health — storage (tables + queues) reachability. The one anonymous route.

Unhealthy answers a bare 503 (``{"status": "unhealthy"}``): the reason (endpoints, exception text)
goes to the log only, since anyone can call this route.
"""

import json
import logging

import azure.functions as func

from shared.health import check_health

bp = func.Blueprint()
log = logging.getLogger("health")


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health()
    headers = {"Cache-Control": "no-store"}
    if report["status"] != "ok":
        log.warning("health: unhealthy: %s", json.dumps(report["storage"]))
        body = json.dumps({"status": "unhealthy"})
        return func.HttpResponse(body, status_code=503, mimetype="application/json", headers=headers)
    return func.HttpResponse(
        json.dumps(report), status_code=200, mimetype="application/json", headers=headers
    )
