"""The OpenAPI document and the app's HTTP routes agree (both directions)."""

from shared.api.openapi import document
from tests.app_functions import functions


def app_routes() -> set[tuple[str, str]]:
    routes = set()
    for fn in functions():
        for binding in fn.get_bindings():
            spec = binding.get_dict_repr()
            if spec["type"] == "httpTrigger":
                for method in spec["methods"]:
                    routes.add((f"/api/{spec['route']}", str(getattr(method, "value", method)).lower()))
    return routes


def test_every_route_is_documented_and_every_documented_route_exists():
    documented = {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "delete", "put")
    }
    assert app_routes() == documented


def test_request_bodies_are_json_schemas():
    for path, item in document()["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                assert schema.get("type") == "object", (path, method)


def test_the_document_is_valid_openapi_and_every_reference_resolves():
    from openapi_spec_validator import validate

    doc = document()
    validate(doc)  # OpenAPI 3.1 meta-schema and references

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = list(refs(doc))
    assert found
    for ref in found:
        assert ref.startswith("#/"), ref
        target = doc
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"dangling reference {ref}"
            target = target[part]


def test_identifiers_carry_the_patterns_the_handlers_check():
    import re

    from shared.api import service

    doc = document()
    run = doc["paths"]["/api/runs/{run_id}"]["parameters"][0]["schema"]["pattern"]
    name = doc["paths"]["/api/mappings/{name}"]["parameters"][0]["schema"]["pattern"]
    assert run == service.RUN_ID.pattern and name == service.MAPPING_NAME.pattern
    couple = doc["paths"]["/api/mappings/{name}/couplings"]["post"]["requestBody"]["content"]
    guid = couple["application/json"]["schema"]["properties"]["bc_id"]["pattern"]
    assert re.fullmatch(guid, "0b9d3b0e-6c1f-4c1e-9a1e-3f1d2c3b4a59") and not re.fullmatch(guid, "C100")
    limit = doc["paths"]["/api/runs"]["get"]["parameters"][0]
    assert limit["name"] == "limit" and limit["schema"]["type"] == "integer"
    # A handler that takes an empty body does not mark it required.
    assert doc["paths"]["/api/sync/modified"]["post"]["requestBody"]["required"] is False
    assert doc["paths"]["/api/runs/{run_id}/decision"]["post"]["requestBody"]["required"] is True
