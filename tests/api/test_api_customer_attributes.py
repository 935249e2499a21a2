"""Customer attributes over HTTP: write one or many, read, roles, tenants, 400s naming the
field and the rule (both stores)."""

from __future__ import annotations

from apikit import Api, error_of, fields_of

PATH = "/api/v1/customers/ada/attributes"


def test_put_get_and_merge(api: Api) -> None:
    put = api.client.put(
        PATH, json={"channel": "web", "firstOrderValue": 42.5}, headers=api.headers(role="editor")
    )
    assert put.status_code == 200, put.text
    assert put.json()["attributes"] == {"channel": "web", "firstOrderValue": 42.5}
    assert put.json()["updatedAt"].endswith("Z")
    merged = api.client.put(
        PATH,
        params={"merge": "true"},
        json={"region": "north", "channel": None},
        headers=api.headers(),
    )
    assert merged.status_code == 200, merged.text
    read = api.get(PATH, role="viewer")
    assert read.status_code == 200
    assert read.json()["customerId"] == "ada"
    assert read.json()["attributes"] == {"firstOrderValue": 42.5, "region": "north"}
    # replace without merge
    api.client.put(PATH, json={"vip": True}, headers=api.headers())
    assert api.get(PATH).json()["attributes"] == {"vip": True}
    # another tenant sees nothing; a customer without attributes is a 404
    assert error_of(api.get(PATH, tenant="globex"), 404)["code"] == (
        "customer_attributes_not_found"
    )
    assert error_of(api.get("/api/v1/customers/bob/attributes"), 404)


def test_roles(api: Api) -> None:
    denied = api.client.put(PATH, json={"a": 1}, headers=api.headers(role="viewer"))
    assert error_of(denied, 403)["code"] == "forbidden"
    denied = api.post("/api/v1/customer-attributes", {"customers": []}, role="viewer")
    assert error_of(denied, 403)
    assert api.client.put(PATH, json={"a": 1}).status_code == 401


def test_bad_attributes_name_the_field(api: Api) -> None:
    for body, field, rule in [
        (["web"], "body", "must be an object"),
        ({"tags": ["a"]}, "body", "attribute 'tags' must be a string, number, boolean or null"),
        ({"": 1}, "body", "attribute name '' is invalid"),
        ({"x": "y" * 20000}, "body", "at most 16384 bytes"),
    ]:
        error = error_of(api.client.put(PATH, json=body, headers=api.headers()), 400)
        assert fields_of(error) == [field] and rule in error["message"], error
    assert error_of(api.get(PATH), 404)


def test_bulk(api: Api) -> None:
    url = "/api/v1/customer-attributes"
    body = {
        "customers": [
            {"customerId": "ada", "attributes": {"channel": "web"}},
            {"customerId": "bob", "attributes": {"channel": "shop", "orders": 3}},
        ]
    }
    response = api.post(url, body, role="editor")
    assert response.status_code == 200, response.text
    assert response.json() == {"written": 2}
    assert api.store.get_customer_attributes("acme") == {
        "ada": {"channel": "web"},
        "bob": {"channel": "shop", "orders": 3},
    }
    response = api.post(
        url, {"merge": True, "customers": [{"customerId": "bob", "attributes": {"orders": 4}}]}
    )
    assert response.status_code == 200
    assert api.store.get_customer_attributes("acme", ["bob"]) == {
        "bob": {"channel": "shop", "orders": 4}
    }
    assert api.store.get_customer_attributes("globex") == {}
    good = {"customerId": "cy", "attributes": {"a": 1}}
    for bad, field in [
        ([], "body"),
        ({"customers": []}, "body.customers"),
        ({"customers": [good], "extra": 1}, "body.extra"),
        ({"customers": [good], "merge": "yes"}, "body.merge"),
        (
            {"customers": [good, {"customerId": "", "attributes": {}}]},
            "body.customers[1].customerId",
        ),
        ({"customers": [good, good]}, "body.customers[1].customerId"),
        ({"customers": [good, {"customerId": "d"}]}, "body.customers[1]"),
        (
            {"customers": [good, {"customerId": "d", "attributes": {"x": {"y": 1}}}]},
            "body.customers[1].attributes",
        ),
        ({"customers": [good] * 1001}, "body.customers"),
    ]:
        error = error_of(api.post(url, bad), 400)
        assert fields_of(error) == [field], (bad, error)
    # nothing of a refused request was stored
    assert "cy" not in api.store.get_customer_attributes("acme")
