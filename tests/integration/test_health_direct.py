from shared.health import check_health


def test_health_reports_storage_reachable(storage_env):
    report = check_health()
    assert report["status"] == "ok", report
    assert report["storage"]["tables"]["ok"] and report["storage"]["queues"]["ok"]


def test_health_reports_unreachable_storage(monkeypatch, storage_env):
    from shared import settings
    from shared.store import clients

    monkeypatch.setenv(
        "AzureWebJobsStorage",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    for cached in (settings.get_settings, clients._cached_table_service, clients._cached_queue_service):
        cached.cache_clear()
    report = check_health()
    assert report["status"] == "unhealthy"
    assert not report["storage"]["tables"]["ok"]
