"""Tenants, settings and API keys."""

from __future__ import annotations

import pytest
from store_testing import PEPPER

from nextbest.store import (
    InvalidInputError,
    Store,
    TenantExistsError,
    TenantNotFoundError,
    open_store,
)
from nextbest.store.keys import DEVELOPMENT_PEPPER, hash_key


def test_tenants_create_get_list(store: Store) -> None:
    acme = store.get_tenant("acme")
    assert acme is not None and acme.name == "Acme Corp" and acme.settings == {}
    assert [t.tenant_id for t in store.list_tenants()] == ["acme", "globex"]
    assert store.get_tenant("nobody") is None
    with pytest.raises(TenantExistsError):
        store.create_tenant("acme")


@pytest.mark.parametrize("bad", ["", "has space", "-leading", "x" * 65, "a/b"])
def test_tenant_ids_are_validated(store: Store, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="tenant id"):
        store.create_tenant(bad)


def test_settings_merge_and_default_flow(store: Store) -> None:
    assert store.update_tenant_settings("acme", {"a": 1, "b": [2]}) == {"a": 1, "b": [2]}
    assert store.update_tenant_settings("acme", {"a": None, "c": "x"}) == {"b": [2], "c": "x"}
    assert store.get_tenant("acme").settings == {"b": [2], "c": "x"}  # type: ignore[union-attr]
    assert store.get_tenant("globex").settings == {}  # type: ignore[union-attr]
    with pytest.raises(TenantNotFoundError):
        store.update_tenant_settings("nobody", {"a": 1})

    assert store.default_flow_key("acme") is None
    store.save_flow("acme", "first", {"n": 1})
    store.publish_flow("acme", "first", 1)
    store.save_flow("acme", "second", {"n": 2})
    store.publish_flow("acme", "second", 1)
    # No setting: the most recently published flow.
    assert store.default_flow_key("acme") == "second"
    store.set_default_flow("acme", "first")
    assert store.default_flow_key("acme") == "first"
    store.set_default_flow("acme", None)
    assert store.default_flow_key("acme") == "second"
    assert store.default_flow_key("globex") is None


def test_api_keys_authenticate_and_revoke(store: Store) -> None:
    key_id, plaintext = store.create_api_key("acme", "editor")
    key = store.authenticate_api_key(plaintext)
    assert key is not None
    assert (key.key_id, key.tenant_id, key.role) == (key_id, "acme", "editor")

    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert store.authenticate_api_key(tampered) is None
    assert store.authenticate_api_key("nbk_0000000000000000_whatever") is None
    assert store.authenticate_api_key("not a key") is None
    assert store.authenticate_api_key("") is None

    assert store.revoke_api_key("globex", key_id) is False  # another tenant's key
    assert store.authenticate_api_key(plaintext) is not None
    assert store.revoke_api_key("acme", key_id) is True
    assert store.revoke_api_key("acme", key_id) is False
    assert store.authenticate_api_key(plaintext) is None
    [listed] = store.list_api_keys("acme")
    assert listed.key_id == key_id and listed.revoked_at is not None
    assert store.list_api_keys("globex") == []


def test_api_key_roles_and_tenant_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="role 'owner' is invalid"):
        store.create_api_key("acme", "owner")
    with pytest.raises(TenantNotFoundError):
        store.create_api_key("nobody", "admin")
    for role in ("admin", "editor", "viewer"):
        _, plaintext = store.create_api_key("globex", role)
        assert store.authenticate_api_key(plaintext).role == role  # type: ignore[union-attr]


def test_plaintext_keys_are_never_stored(store: Store) -> None:
    key_id, plaintext = store.create_api_key("acme", "admin")
    secret = plaintext.split("_", 2)[2]
    with store._read() as cur:  # type: ignore[attr-defined]
        rows = cur.execute("SELECT * FROM api_keys").fetchall()
    dump = repr(rows)
    assert key_id in dump
    assert plaintext not in dump and secret not in dump
    assert hash_key(plaintext, PEPPER) in dump  # HMAC-SHA256 under the pepper


def test_keys_depend_on_the_pepper(store_factory) -> None:
    store = store_factory()
    store.create_tenant("acme")
    _, plaintext = store.create_api_key("acme", "viewer")
    other = store_factory()
    other._pepper_value = b"another-pepper"  # type: ignore[attr-defined]
    assert other.authenticate_api_key(plaintext) is None


def test_development_pepper_warns_once(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from nextbest.store import keys

    monkeypatch.delenv("NEXTBEST_API_KEY_PEPPER", raising=False)
    monkeypatch.setattr(keys, "_warned", type(keys._warned)())
    with caplog.at_level("WARNING", logger="nextbest.store.keys"):
        first = open_store(f"sqlite:///{tmp_path / 'a.db'}")
        second = open_store(f"sqlite:///{tmp_path / 'b.db'}")
        assert caplog.records == []  # nothing until keys are used
        assert first._pepper == DEVELOPMENT_PEPPER.encode()  # type: ignore[attr-defined]
        assert second._pepper == DEVELOPMENT_PEPPER.encode()  # type: ignore[attr-defined]
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "NEXTBEST_API_KEY_PEPPER" in caplog.records[0].message
    monkeypatch.setenv("NEXTBEST_API_KEY_PEPPER", "from-env")
    third = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    assert third._pepper == b"from-env"  # type: ignore[attr-defined]
    for store in (first, second, third):
        store.close()
