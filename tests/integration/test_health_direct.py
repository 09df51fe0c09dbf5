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


def test_sync_queue_messages_are_base64_like_the_functions_host_expects(storage_env, unique_name):
    import base64
    import json

    from azure.storage.queue import QueueClient

    from shared.store import clients

    clients.queue(unique_name).create_queue()
    clients.queue(unique_name).send_message(json.dumps({"v": 1}))
    raw = QueueClient.from_connection_string(storage_env["AzureWebJobsStorage"], unique_name)
    message = next(iter(raw.receive_messages()))
    assert json.loads(base64.b64decode(message.content)) == {"v": 1}
