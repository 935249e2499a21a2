"""The API describes itself truthfully: security, the tenant header, the error answers really
sent (and no 422), id constraints, ``Allow`` on 405, and docs pages that work offline."""

from __future__ import annotations

import re
from typing import Any

import pytest
from apikit import Api, error_of

from nextbest.store import MAX_ID_LENGTH

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


@pytest.fixture
def schema(api: Api) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_every_api_operation_has_security_the_tenant_header_and_real_errors(
    schema: dict[str, Any],
) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == schemes["bearerAuth"] | {"type": "http", "scheme": "bearer"}
    assert (
        schemes["apiKeyHeader"] | {"in": "header", "name": "X-API-Key"} == schemes["apiKeyHeader"]
    )
    api_operations = [op for op in operations(schema) if op[1].startswith("/api/")]
    assert len(api_operations) >= 17
    for method, path, operation in api_operations:
        where = f"{method} {path}"
        assert operation["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], where
        tenant = [p for p in operation["parameters"] if p["name"] == "X-Tenant-Id"]
        assert len(tenant) == 1 and tenant[0]["in"] == "header" and tenant[0]["required"], where
        responses = operation["responses"]
        assert "422" not in responses, where
        for status in ("400", "401", "404", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF, where
        has_body = "requestBody" in operation
        assert ("413" in responses) is has_body and ("415" in responses) is has_body, where
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            # A busy store or a concurrent change answers 409 on any write.
            assert responses["409"]["content"]["application/json"]["schema"] == ERROR_REF, where
        assert "Roles: " in operation["description"], where
    # No operation documents the validation error FastAPI would send as 422: we send 400.
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "422" not in str(schema["paths"])
    health = schema["paths"]["/healthz"]["get"]
    assert "security" not in health and "400" not in health["responses"]


def test_403_is_documented_where_a_role_is_refused(schema: dict[str, Any]) -> None:
    paths = schema["paths"]
    assert "403" in paths["/api/v1/keys"]["get"]["responses"]  # admin only
    assert "403" in paths["/api/v1/recommend"]["post"]["responses"]  # editor, admin
    assert "403" not in paths["/api/v1/offers"]["get"]["responses"]  # every role
    assert paths["/api/v1/keys"]["get"]["description"].endswith("Roles: admin.")
    conflict = paths["/api/v1/respond"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"] == ERROR_REF
    assert "201" in paths["/api/v1/offers/{offerId}"]["put"]["responses"]


def test_plugin_routes_are_described_like_host_routes(schema: dict[str, Any]) -> None:
    # The recorder plugin (apikit) declares nothing but require_role and its body.
    echo = schema["paths"]["/api/v1/recorder/echo"]["post"]
    whoami = schema["paths"]["/api/v1/recorder/whoami"]["get"]
    for operation in (echo, whoami):
        assert operation["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
        assert any(p["name"] == "X-Tenant-Id" for p in operation["parameters"])
        assert {"400", "401", "403", "404"} <= set(operation["responses"])
        assert "422" not in operation["responses"]
    assert {"413", "415"} <= set(echo["responses"])


def test_ids_carry_their_constraints(schema: dict[str, Any]) -> None:
    def id_schemas() -> list[dict[str, Any]]:
        found = []
        for _, _, operation in operations(schema):
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] != "version":
                    found.append(parameter["schema"])
        body = schema["components"]["schemas"]["RespondBody"]["properties"]
        found.append(body["customerId"])
        found.extend(body[name]["anyOf"][0] for name in ("offerId", "recommendationId"))
        return found

    schemas = id_schemas()
    assert len(schemas) > 8
    for id_schema in schemas:
        assert id_schema["minLength"] == 1 and id_schema["maxLength"] == MAX_ID_LENGTH
        assert re.fullmatch(id_schema["pattern"], "ada-42 é")
        assert not re.fullmatch(id_schema["pattern"], "a\x00b")
        assert not re.fullmatch(id_schema["pattern"], "a\x85b")
    respond = schema["components"]["schemas"]["RespondBody"]["properties"]
    value = respond["conversionValue"]["anyOf"][0]
    assert (value["type"], value["minimum"], value["maximum"]) == ("number", -1e12, 1e12)
    assert "refund" in value["description"]  # the sign rule: >= 0 except for a refund
    assert respond["rank"]["anyOf"][0]["maximum"] == 50
    assert "2200-01-01" in respond["timestamp"]["anyOf"][0]["description"]
    assert not re.fullmatch(respond["customerId"]["pattern"], "   ")  # blank is refused

    # The ids inside documents the server validates against the loaded plugins.
    def body_of(path: str, method: str = "post") -> dict[str, Any]:
        content = schema["paths"][path][method]["requestBody"]["content"]
        found: dict[str, Any] = content["application/json"]["schema"]
        return found

    offer = body_of("/api/v1/offers")
    assert offer["required"] == ["id"] and offer["properties"]["id"]["maxLength"] == MAX_ID_LENGTH
    flow = body_of("/api/v1/flows")
    assert flow["required"] == ["key", "version", "nodes"]
    assert re.fullmatch(flow["properties"]["key"]["pattern"], "retention.v2")
    assert not re.fullmatch(flow["properties"]["key"]["pattern"], "-x")
    assert flow["properties"]["version"]["maximum"] == 2**31 - 1
    outcome = schema["components"]["schemas"]["OutcomeTypeBody"]["properties"]["name"]
    assert outcome["maxLength"] == 64 and re.fullmatch(outcome["pattern"], "demo_click")
    assert not re.fullmatch(outcome["pattern"], "Demo")


def test_405_allows_every_method_of_the_path(api: Api) -> None:
    response = api.client.patch("/api/v1/offers/premium-card", headers=api.headers())
    error = error_of(response, 405)
    assert response.headers["allow"] == "GET, PUT, DELETE"
    assert "PATCH" in error["message"]
    response = api.client.delete("/api/v1/offers", headers=api.headers())
    assert error_of(response, 405) and response.headers["allow"] == "GET, POST"
    # Inside a mount (the docs page's static assets) the methods are the mounted app's.
    response = api.client.delete("/docs-assets/swagger-ui-bundle.js")
    error = error_of(response, 405)
    assert response.headers["allow"] == "GET, HEAD"
    assert error["message"].endswith("use GET, HEAD")


def test_the_docs_pages_load_only_local_assets(api: Api) -> None:
    for page in ("/docs", "/redoc"):
        response = api.client.get(page)
        assert response.status_code == 200
        html = response.text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
        assert urls, page
        assert not [u for u in urls if "//" in u], (page, urls)  # no CDN, no other host
        for url in urls:
            asset = api.client.get(url)
            assert asset.status_code == 200 and asset.content, url
    assert "/openapi.json" in api.client.get("/docs").text
    assert (
        api.client.get("/docs-assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
