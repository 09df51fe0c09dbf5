import pytest

from shared.settings import SETTINGS, Settings, SettingsError

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "DATAVERSE_URL": "https://org.crm.dynamics.com/"}


def test_defaults_and_derived_scope():
    s = Settings.from_env(BASE)
    assert s.dataverse_url == "https://org.crm.dynamics.com"
    assert s.dataverse_scope == "https://org.crm.dynamics.com/.default"
    assert s.sync_schedule == "0 */30 * * * *"
    assert s.dataverse_page_size == 5000 and s.bc_batch_size == 100
    assert not s.storage.uses_identity


def test_identity_storage_when_no_connection_string():
    s = Settings.from_env({"AzureWebJobsStorage__accountName": "acct"})
    assert s.storage.uses_identity and s.storage.account_name == "acct"


def test_missing_storage_is_a_clear_error():
    with pytest.raises(SettingsError, match="AzureWebJobsStorage"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"), [("DATAVERSE_BULK_SIZE", "1001"), ("BC_BATCH_SIZE", "x"), ("BC_MAX_CONCURRENCY", "6")]
)
def test_out_of_range_values_are_rejected(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**BASE, name: value})


def test_setting_names_are_unique():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))


def test_sample_local_settings_lists_every_setting():
    import json
    from pathlib import Path

    sample = json.loads((Path(__file__).parents[2] / "local.settings.sample.json").read_text())["Values"]
    expected = {s.name for s in SETTINGS if not s.name.startswith("AzureWebJobsStorage__")}
    assert expected <= set(sample), sorted(expected - set(sample))
    assert sample["FUNCTIONS_WORKER_RUNTIME"] == "python"
    # The sample never carries a real secret.
    assert all(
        sample[s.name] in ("", "<written by python -m devstack up>", "UseDevelopmentStorage=true")
        for s in SETTINGS
        if s.secret and s.name in sample
    )


def test_readme_configuration_table_lists_every_setting():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [s.name for s in SETTINGS if f"| `{s.name}` |" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
