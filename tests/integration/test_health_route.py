"""GET /api/health as the route answers it: healthy JSON, or a bare 503 that names no endpoint and
no exception (anyone may call this route)."""

from __future__ import annotations

import json

import azure.functions as func

from shared import settings
from shared.store import clients

DEAD = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def call() -> func.HttpResponse:
    from functions.health import health

    request = func.HttpRequest(method="GET", url="http://localhost/api/health", headers={}, body=b"")
    return health(request)


def clear() -> None:
    for cached in (settings.get_settings, clients._cached_table_service, clients._cached_queue_service):
        cached.cache_clear()


def test_healthy_answers_200_with_storage_reachability(storage_env):
    response = call()
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == "ok"


def test_unhealthy_answers_a_bare_503(storage_env, monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", DEAD)
    clear()
    try:
        response = call()
    finally:
        monkeypatch.undo()
        clear()
    assert response.status_code == 503
    body = response.get_body().decode()
    assert json.loads(body) == {"status": "unhealthy"}
    assert "127.0.0.1" not in body and "Error" not in body and "devstoreaccount1" not in body
