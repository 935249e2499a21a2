"""The served report's access rules: sign-in with tenant and key, the session cookie's flags,
signature and expiry, CSRF on every POST, and tenant isolation."""

from __future__ import annotations

import base64
import json
import re

import pytest
from uikit import Ui

from nextbest.ui.session import COOKIE, SIGNED_OUT_NAMESPACE, SessionSigner


def test_pages_need_a_session(ui: Ui) -> None:
    response = ui.client.get("/ui/offers", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/sign-in?next=%2Fui%2Foffers")
    assert "Sign in" in ui.client.get("/ui/offers").text


def test_sign_in_sets_a_signed_strict_httponly_cookie(ui: Ui) -> None:
    response = ui.sign_in()
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
    assert "secure" not in flags  # plain http here; https sets it (test below)
    assert ui.client.get("/ui/offers").status_code == 200


def test_secure_flag_over_https(ui: Ui) -> None:
    ui.client.base_url = ui.client.base_url.copy_with(scheme="https")
    response = ui.sign_in()
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_a_wrong_key_or_another_tenants_key_fails_alike(ui: Ui) -> None:
    wrong = ui.sign_in(key="nope")
    other = ui.sign_in(tenant="acme", key=ui.keys[("globex", "admin")])
    assert wrong.status_code == other.status_code == 401
    assert "not valid" in wrong.text and "not valid" in other.text
    assert COOKIE not in ui.client.cookies


def test_sign_in_without_the_forms_token_is_refused(ui: Ui) -> None:
    response = ui.client.post(
        "/ui/sign-in",
        data={"tenant": "acme", "key": ui.keys[("acme", "viewer")]},
        follow_redirects=False,
    )
    assert response.status_code == 403


def test_a_tampered_cookie_leads_to_sign_in(ui: Ui) -> None:
    ui.sign_in()
    value = ui.client.cookies[COOKIE]
    version, payload, signature = value.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["t"] = "globex"  # try to read another tenant with our signature
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    ui.client.cookies.set(COOKIE, f"{version}.{forged}.{signature}", path="/ui")
    response = ui.client.get("/ui/offers", follow_redirects=False)
    assert response.status_code == 303 and "/ui/sign-in" in response.headers["location"]
    ui.client.cookies.set(COOKIE, "v1.garbage.x", path="/ui")
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 303


def test_an_expired_session_leads_to_sign_in(ui: Ui) -> None:
    signer = SessionSigner(ui.store, clock=lambda: 1_000.0)
    key = ui.store.authenticate_api_key(ui.keys[("acme", "viewer")])
    assert key is not None
    _, cookie = signer.open("acme", key.key_id, key.role)  # expired long ago
    ui.client.cookies.set(COOKIE, cookie, path="/ui")
    response = ui.client.get("/ui/offers", follow_redirects=False)
    assert response.status_code == 303 and "/ui/sign-in" in response.headers["location"]


def test_a_revoked_key_ends_its_sessions(ui: Ui) -> None:
    ui.sign_in()
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 200
    key = ui.store.authenticate_api_key(ui.keys[("acme", "viewer")])
    assert key is not None
    ui.store.revoke_api_key("acme", key.key_id)
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_csrf_token(ui: Ui) -> None:
    ui.sign_in()
    token = ui.csrf()
    refused = ui.client.post("/ui/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    wrong = ui.client.post("/ui/sign-out", data={"csrf": token + "x"}, follow_redirects=False)
    assert wrong.status_code == 403
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 200
    done = ui.client.post("/ui/sign-out", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 303


def test_a_signed_out_cookie_replayed_is_refused_everywhere(ui: Ui) -> None:
    ui.sign_in()
    cookie = ui.client.cookies[COOKIE]
    ui.sign_in()  # a second session of the same key, in another browser
    other = ui.client.cookies[COOKIE]
    assert other != cookie
    ui.client.cookies.set(COOKIE, cookie, path="/ui")
    token = ui.csrf()
    assert ui.client.post("/ui/sign-out", data={"csrf": token}).status_code == 200
    for path in ("/ui/offers", "/ui/customer?customer=c1", "/ui/offers/offers.csv"):
        ui.client.cookies.set(COOKIE, cookie, path="/ui")  # the old cookie, replayed
        assert ui.client.get(path, follow_redirects=False).status_code == 303, path
    ui.client.cookies.set(COOKIE, cookie, path="/ui")
    replayed = ui.client.post("/ui/sign-out", data={"csrf": token}, follow_redirects=False)
    assert replayed.headers["location"].startswith("/ui/sign-in")
    # another worker (a fresh signer over the same store) refuses it too
    assert SessionSigner(ui.store).check(cookie) is None
    # the other session of the same key is not ended
    ui.client.cookies.set(COOKIE, other, path="/ui")
    assert ui.client.get("/ui/offers", follow_redirects=False).status_code == 200


def test_sign_out_keeps_only_unexpired_entries(ui: Ui) -> None:
    now = [1_000_000.0]
    signer = SessionSigner(ui.store, clock=lambda: now[0])
    old, old_cookie = signer.open("acme", _key_id(ui), "viewer")
    signer.sign_out(old)
    assert signer.check(old_cookie) is None
    now[0] = old.expires + 1  # the first session has expired meanwhile
    fresh, fresh_cookie = signer.open("acme", _key_id(ui), "viewer")
    signer.sign_out(fresh)
    kept = ui.store.get_documents(SIGNED_OUT_NAMESPACE, "acme")
    assert set(kept) == {fresh.session_id}
    assert signer.check(fresh_cookie) is None


def _key_id(ui: Ui) -> str:
    keys = [k for k in ui.store.list_api_keys("acme") if k.role == "viewer"]
    return keys[0].key_id


def test_one_tenants_session_never_shows_another(ui: Ui) -> None:
    ui.sign_in("acme")
    pages = ["/ui/offers", "/ui/customer?customer=gx-customer", "/ui/lift", "/ui/triggers"]
    for path in pages:
        text = ui.client.get(path).text
        assert "globex-secret" not in text and "999" not in text, path
    assert ui.client.get("/ui/customer?customer=gx-customer").status_code == 404
    ui.client.cookies.clear()
    ui.sign_in("globex", "admin")
    text = ui.client.get("/ui/offers").text
    assert "globex-secret" in text and "gold" not in text


def test_secret_is_shared_by_workers(ui: Ui) -> None:
    ui.sign_in()
    cookie = ui.client.cookies[COOKIE]
    other_worker = SessionSigner(ui.store)  # another process: same store, no memory
    session = other_worker.check(cookie)
    assert session is not None and session.tenant_id == "acme" and session.role == "viewer"


def test_configured_secret(ui: Ui, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTBEST_UI_SECRET", "short")
    with pytest.raises(ValueError, match="at least 32"):
        SessionSigner(ui.store)
    monkeypatch.setenv("NEXTBEST_UI_SECRET", "s" * 40)
    key = ui.store.authenticate_api_key(ui.keys[("acme", "viewer")])
    assert key is not None
    _, cookie = SessionSigner(ui.store).open("acme", key.key_id, key.role)
    assert SessionSigner(ui.store).check(cookie) is not None
    monkeypatch.setenv("NEXTBEST_UI_SECRET", "t" * 40)
    assert SessionSigner(ui.store).check(cookie) is None


def test_next_is_kept_inside_the_report(ui: Ui) -> None:
    form = ui.client.get("/ui/sign-in?next=https://evil.example/")
    assert re.search(r'name="next" value="/ui/"', form.text)
