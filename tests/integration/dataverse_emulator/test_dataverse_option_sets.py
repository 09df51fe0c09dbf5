"""The Dataverse emulator's local option sets over HTTP, as the option mappings use them: the picklist
attribute's metadata with its options, InsertOptionValue, UpdateOptionValue, and choice values checked
against the live options on writes."""

from __future__ import annotations

import uuid

from tests.integration.dataverse_emulator.test_dataverse_api import dv  # noqa: F401 - shared fixture

PICKLIST = (
    "/EntityDefinitions(LogicalName='account')/Attributes(LogicalName='paymenttermscode')"
    "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
)


def label(text: str) -> dict:
    return {"LocalizedLabels": [{"Label": text, "LanguageCode": 1033}]}


def options(client) -> dict[int, dict]:
    body = client.get(
        PICKLIST, params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}
    ).json()
    return {o["Value"]: o for o in body["OptionSet"]["Options"]}


def test_picklist_metadata_lists_the_default_options_with_label_types(dv):  # noqa: F811
    client, _, _ = dv
    response = client.get(PICKLIST, params={"$expand": "OptionSet"})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    assert body["LogicalName"] == "paymenttermscode"
    first = body["OptionSet"]["Options"][0]
    assert first["Value"] == 1 and first["Label"]["UserLocalizedLabel"]["Label"] == "Net 30"
    assert first["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033
    assert {o["Value"] for o in body["OptionSet"]["Options"]} == {1, 2, 3, 4}
    # Without $expand there are no options; other attributes and tables answer as Dataverse does.
    assert "OptionSet" not in client.get(PICKLIST).json()
    not_picklist = PICKLIST.replace("paymenttermscode", "name")
    assert client.get(not_picklist).status_code == 400
    assert client.get(PICKLIST.replace("paymenttermscode", "nosuch")).status_code == 404
    assert client.get(PICKLIST.replace("'account'", "'nosuch'")).status_code == 404


def test_insert_option_value_adds_an_option_a_write_may_then_use(dv):  # noqa: F811
    client, _, _ = dv
    account = {"name": "Option user", "paymenttermscode": 100000005}
    refused = client.post("/accounts", json=account)
    assert (
        refused.status_code == 400
        and "not a valid value for paymenttermscode" in refused.json()["error"]["message"]
    )
    external = str(uuid.uuid4())
    body = {
        "EntityLogicalName": "account",
        "AttributeLogicalName": "paymenttermscode",
        "Value": 100000005,
        "Label": label("14 DAYS"),
        "ExternalValue": external,
    }
    inserted = client.post("/InsertOptionValue", json=body)
    assert inserted.status_code == 200 and inserted.json()["NewOptionValue"] == 100000005
    assert options(client)[100000005]["ExternalValue"] == external
    assert client.post("/accounts", json=account).status_code == 204
    # A taken value is refused and adds nothing; without a Value the next one is assigned.
    again = client.post("/InsertOptionValue", json=body)
    assert again.status_code == 400 and "already used" in again.json()["error"]["message"]
    assigned = client.post("/InsertOptionValue", json={**body, "Value": None, "Label": label("COD")})
    assert assigned.json()["NewOptionValue"] == 100000006
    assert len(options(client)) == 6
    assert client.post("/InsertOptionValue", json={**body, "Value": 7, "Label": label("")}).status_code == 400
    missing = client.post("/InsertOptionValue", json={**body, "AttributeLogicalName": "nosuch"})
    assert missing.status_code == 404


def test_update_option_value_renames_an_option(dv):  # noqa: F811
    client, admin, _ = dv
    body = {"EntityLogicalName": "account", "AttributeLogicalName": "paymenttermscode", "Value": 3}
    renamed = client.post("/UpdateOptionValue", json={**body, "Label": label("NET 45"), "MergeLabels": True})
    assert renamed.status_code == 204
    assert options(client)[3]["Label"]["UserLocalizedLabel"]["Label"] == "NET 45"
    assert client.post("/UpdateOptionValue", json={**body, "Label": label("x")}).status_code == 400
    unknown = {**body, "Value": 99, "Label": label("x"), "MergeLabels": True}
    assert client.post("/UpdateOptionValue", json=unknown).status_code == 404
    # /_admin/reset restores the table's own options.
    admin.reset()
    assert options(client)[3]["Label"]["UserLocalizedLabel"]["Label"] == "Net 45"
