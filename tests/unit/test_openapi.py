"""The OpenAPI document and the app's HTTP routes agree (both directions)."""

import function_app
from shared.api.openapi import document


def app_routes() -> set[tuple[str, str]]:
    routes = set()
    for fn in function_app.app.get_functions():
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
