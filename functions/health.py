"""GET /api/health — storage (tables + queues) reachability. The one anonymous route."""

import json

import azure.functions as func

from shared.health import check_health

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    report = check_health()
    return func.HttpResponse(
        json.dumps(report),
        status_code=200 if report["status"] == "ok" else 503,
        mimetype="application/json",
    )
