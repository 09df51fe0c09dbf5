"""JSON API: start runs, run status, decisions, cancel, mappings (docs/ARCHITECTURE.md §8)."""

import azure.functions as func

from functions.http_util import api, body_of, context, json_response
from shared.api import browse, limits, records, service
from shared.api.openapi import document as openapi_document

bp = func.Blueprint()
KEY = func.AuthLevel.FUNCTION


@bp.route(route="sync/full", methods=["POST"], auth_level=KEY)
@api
def sync_full(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.start_full(context(), body_of(req)), 202)


@bp.route(route="sync/modified", methods=["POST"], auth_level=KEY)
@api
def sync_modified(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.start_modified(context(), body_of(req)), 202)


@bp.route(route="mappings/{name}/sync", methods=["POST"], auth_level=KEY)
@api
def sync_mapping(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.start_mapping(context(), req.route_params["name"], body_of(req)), 202)


@bp.route(route="runs", methods=["GET"], auth_level=KEY)
@api
def runs(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(
        service.list_runs(context(), req.params.get("limit"), req.params.get("continuation"))
    )


@bp.route(route="runs/{run_id}", methods=["GET"], auth_level=KEY)
@api
def run(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.run_detail(context(), req.route_params["run_id"]))


@bp.route(route="runs/{run_id}/decision", methods=["POST"], auth_level=KEY)
@api
def decision(req: func.HttpRequest) -> func.HttpResponse:
    body = body_of(req, required=True)
    return json_response(service.decide(context(), req.route_params["run_id"], body))


@bp.route(route="runs/{run_id}/cancel", methods=["POST"], auth_level=KEY)
@api
def cancel(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.cancel(context(), req.route_params["run_id"]), 202)


@bp.route(route="mappings", methods=["GET"], auth_level=KEY)
@api
def mappings(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.list_mappings(context()))


@bp.route(route="mappings/reset", methods=["POST"], auth_level=KEY)
@api
def mappings_reset(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.reset_mappings(context()))


@bp.route(route="mappings/{name}", methods=["GET", "PATCH"], auth_level=KEY)
@api
def mapping(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params["name"]
    if req.method == "PATCH":
        return json_response(service.patch_mapping(context(), name, body_of(req, required=True)))
    return json_response(service.get_mapping(context(), name))


@bp.route(route="mappings/{name}/couplings", methods=["GET", "POST", "DELETE"], auth_level=KEY)
@api
def couplings(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params["name"]
    if req.method == "GET":
        return json_response(records.list_couplings(context(), name, dict(req.params)))
    if req.method == "POST":
        return json_response(records.couple(context(), name, body_of(req, required=True)), 201)
    return json_response(records.uncouple(context(), name, body_of(req, required=True)))


@bp.route(route="mappings/{name}/broken-couplings", methods=["GET"], auth_level=KEY)
@api
def broken_couplings(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(records.list_broken(context(), req.route_params["name"], dict(req.params)))


@bp.route(route="mappings/{name}/broken-couplings/restore", methods=["POST"], auth_level=KEY)
@api
def broken_restore(req: func.HttpRequest) -> func.HttpResponse:
    body = body_of(req, required=True)
    return json_response(records.repair_broken(context(), req.route_params["name"], body, "restore"))


@bp.route(route="mappings/{name}/broken-couplings/delete", methods=["POST"], auth_level=KEY)
@api
def broken_delete(req: func.HttpRequest) -> func.HttpResponse:
    body = body_of(req, required=True)
    return json_response(records.repair_broken(context(), req.route_params["name"], body, "delete"))


@bp.route(route="mappings/{name}/records/sync", methods=["POST"], auth_level=KEY)
@api
def records_sync(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(
        records.sync_records(context(), req.route_params["name"], body_of(req, required=True))
    )


@bp.route(route="mappings/{name}/records/create", methods=["POST"], auth_level=KEY)
@api
def records_create(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(
        records.create_records(context(), req.route_params["name"], body_of(req, required=True))
    )


@bp.route(route="mappings/{name}/match/start", methods=["POST"], auth_level=KEY)
@api
def coupling_start(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.start_coupling(context(), req.route_params["name"], body_of(req)), 202)


@bp.route(route="mappings/{name}/uncouple/start", methods=["POST"], auth_level=KEY)
@api
def uncoupling_start(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.start_uncoupling(context(), req.route_params["name"], body_of(req)), 202)


@bp.route(route="mappings/{name}/match", methods=["POST"], auth_level=KEY)
@api
def match(req: func.HttpRequest) -> func.HttpResponse:
    body = body_of(req)
    limits.check(context(), limits.DRY_RUNS)  # a match reads the whole source, like a dry run
    return json_response(records.match(context(), req.route_params["name"], body))


@bp.route(route="mappings/{name}/skipped/restore-all", methods=["POST"], auth_level=KEY)
@api
def skipped_restore_all(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(records.restore_all_skipped(context(), req.route_params["name"]))


@bp.route(route="mappings/{name}/skipped/restore", methods=["POST"], auth_level=KEY)
@api
def skipped_restore(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(
        records.restore_skipped(context(), req.route_params["name"], body_of(req, required=True))
    )


@bp.route(route="errors", methods=["GET"], auth_level=KEY)
@api
def errors(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(records.list_errors(context(), dict(req.params)))


@bp.route(route="errors/retry", methods=["POST"], auth_level=KEY)
@api
def errors_retry(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(records.retry_errors(context(), body_of(req, required=True)))


@bp.route(route="openapi.json", methods=["GET"], auth_level=KEY)
@api
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi_document())


@bp.route(route="review", methods=["GET"], auth_level=KEY)
@api
def full_sync_review(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.full_sync_review(context()))


@bp.route(route="schedule", methods=["GET"], auth_level=KEY)
@api
def schedule(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(service.schedule(context()))


# --- read side of the admin portal (shared/api/browse.py) -------------------------------------------
@bp.route(route="browse/history", methods=["GET"], auth_level=KEY)
@api
def browse_history(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(browse.history(context(), dict(req.params)))


@bp.route(route="browse/jobs", methods=["GET"], auth_level=KEY)
@api
def browse_jobs(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(browse.list_jobs(context(), dict(req.params)))


@bp.route(route="browse/errors", methods=["GET"], auth_level=KEY)
@api
def browse_errors(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(browse.list_errors(context(), dict(req.params)))


@bp.route(route="browse/mappings/{name}/couplings", methods=["GET"], auth_level=KEY)
@api
def browse_couplings(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(browse.list_couplings(context(), req.route_params["name"], dict(req.params)))


@bp.route(route="browse/mappings/{name}/records", methods=["GET"], auth_level=KEY)
@api
def browse_records(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(browse.search_records(context(), req.route_params["name"], dict(req.params)))
