"""Sign-in with an OpenID Connect provider, against a real one: panva's oidc-provider
(tests/oidc/provider.mjs) run by Node on 127.0.0.1, and fairimage's real server. A test signs in as a
browser would: our button, the provider's login and consent forms, the redirect back to our callback."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Role, operator
from fairimage.services.governance import accounts, audit
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests.conftest import LiveServer, _start

NODE = shutil.which("node")
PROVIDER = Path(__file__).parent / "oidc"
SECRET = "fairimage-test-client-secret"  # the clients' secret in provider.mjs
PASSWORD = "correct horse battery staple"
ADMIN = operator("test")

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the OpenID Connect tests run a real provider with it"
)


@dataclass
class Site:
    repo: Path
    repository: Repository
    issuer: str
    url: str  # fairimage with the provider's client "fairimage"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """The provider, one per module; its packages come from tests/oidc/package-lock.json (make test)."""
    assert NODE is not None
    if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, check=True, capture_output=True
        )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _start(
        [NODE, "provider.mjs", "--port", str(port)],
        lambda: httpx.get(f"{url}/.well-known/openid-configuration", timeout=1).raise_for_status(),
        30,
        "oidc-provider",
        cwd=PROVIDER,
    )
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def site(issuer: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A repository whose fairimage.toml names the provider, with the client secret in the environment,
    and a local user "ada" (a name the provider has too)."""
    repo = tmp_path_factory.mktemp("oidc") / "repo"
    repository = init_repository(load_settings(repo))
    accounts.add_user(repository, ADMIN, "ada", Role.SUBMITTER, password=PASSWORD)
    with (repo / "fairimage.toml").open("a") as config:
        config.write(f'\n[oidc]\nissuer = "{issuer}"\nclient_id = "fairimage"\nname = "Test University"\n')
        config.write('scopes = "openid profile email orcid"\n')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRIMAGE_OIDC_CLIENT_SECRET", SECRET)
        settings = load_settings(repo)
    with LiveServer(settings) as server:
        yield Site(repo, repository, issuer, server.url)
    repository.close()


def server_for(site: Site, **oidc: str) -> LiveServer:
    """Another server on the same repository, its [oidc] settings changed by flags."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRIMAGE_OIDC_CLIENT_SECRET", SECRET)
        settings = load_settings(site.repo, **{f"oidc_{key}": value for key, value in oidc.items()})
    return LiveServer(settings)


def to_provider(browser: httpx.Client, server: str, next: str = "/") -> httpx.Response:
    """Press "Sign in with ...": the provider's login page (the redirects up to it followed)."""
    start = browser.get(f"{server}/auth/oidc/login", params={"next": next})
    assert start.status_code == 302, start.text
    page = browser.get(start.headers["location"], follow_redirects=True)
    assert page.status_code == 200 and 'name="prompt"' in page.text, page.text
    return page


def log_in(browser: httpx.Client, page: httpx.Response, login: str) -> str:
    """Submit the provider's login form (unless the browser is signed in there already), then its consent
    form (asked of a loopback client each time); the URL of our callback it sends the browser to (not
    opened)."""
    answer = page
    if 'name="prompt" value="login"' in page.text:
        answer = submit(browser, page, {"prompt": "login", "login": login, "password": "any password"})
    while "/auth/oidc/callback" not in answer.headers.get("location", ""):
        if 'name="prompt" value="consent"' in answer.text:
            answer = submit(browser, answer, {"prompt": "consent"})
            continue
        assert answer.is_redirect, answer.text
        answer = browser.get(urljoin(str(answer.url), answer.headers["location"]))
    return answer.headers["location"]


def submit(browser: httpx.Client, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action is not None, page.text
    return browser.post(urljoin(str(page.url), action.group(1)), data=fields)


def callback_for(browser: httpx.Client, server: str, login: str, next: str = "/") -> str:
    return log_in(browser, to_provider(browser, server, next), login)


def sign_in(browser: httpx.Client, server: str, login: str, next: str = "/") -> httpx.Response:
    """The whole sign-in; the callback's answer (a redirect where the person was going, or an error page)."""
    return browser.get(callback_for(browser, server, login, next))


def message(page: httpx.Response) -> str:
    found = re.search(r'<p class="notice error" role="alert">(.*?)</p>', page.text, re.S)
    assert found is not None, page.text
    return found.group(1).replace("&#39;", "'").replace("&#34;", '"')


def user(repository: Repository, name: str) -> accounts.User:
    return next(u for u in accounts.list_users(repository, ADMIN) if u.name == name)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def test_the_sign_in_page_offers_the_provider(site: Site) -> None:
    page = httpx.get(f"{site.url}/login", params={"next": "/search"})
    assert page.status_code == 200
    assert "Sign in with Test University" in page.text
    assert 'href="/auth/oidc/login?next=/search"' in page.text


def test_first_sign_in_makes_a_viewer_with_their_orcid_and_the_next_finds_them(site: Site) -> None:
    with httpx.Client() as browser:
        done = sign_in(browser, site.url, "grace", next="/search?q=cells")
        assert done.status_code == 303 and done.headers["location"] == "/search?q=cells"
        cookie = browser.cookies.get("fairimage_session")
        assert cookie and "fairimage_oidc" not in browser.cookies  # the pending sign-in is gone
        home = browser.get(f"{site.url}/")
        assert "grace" in home.text and "Sign out" in home.text
    grace = user(site.repository, "grace")
    assert grace.role is Role.VIEWER and grace.orcid == "0000-0001-5109-3700"
    assert grace.email == "grace@example.org" and not grace.has_password
    with httpx.Client() as browser:  # another browser, another day: the same user
        assert sign_in(browser, site.url, "grace").status_code == 303
    assert [u.id for u in accounts.list_users(site.repository, ADMIN) if u.name.startswith("grace")] == [
        grace.id
    ]
    entries = [
        e for e in audit.entries(site.repository) if e.action == "session.sign_in" and e.actor == "grace"
    ]
    assert len(entries) == 2 and entries[-1].details["method"] == "oidc"
    assert entries[-1].details["subject"] == "grace" and entries[-1].details["issuer"] == site.issuer


def test_a_local_user_of_the_same_name_is_never_taken_over(site: Site) -> None:
    with httpx.Client() as browser:
        assert sign_in(browser, site.url, "ada").status_code == 303
        assert "ada@127.0.0.1" in browser.get(f"{site.url}/").text
    provider_ada = user(site.repository, "ada@127.0.0.1")
    assert provider_ada.role is Role.VIEWER and provider_ada.orcid == "0000-0002-1825-0097"
    local = user(site.repository, "ada")
    assert local.role is Role.SUBMITTER and local.has_password and local.orcid is None
    with httpx.Client(base_url=site.url) as browser:  # the local account signs in with its password
        form = browser.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        signed = browser.post("/login", data={"name": "ada", "password": PASSWORD, "csrf_token": token[1]})
        assert signed.status_code == 303
        assert ">ada</span>" in browser.get("/").text


def test_a_token_made_after_oidc_sign_in_reads_through_the_api(site: Site) -> None:
    with httpx.Client() as browser:
        assert sign_in(browser, site.url, "linus").status_code == 303
        page = browser.get(f"{site.url}/").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        made = browser.post(
            f"{site.url}/api/tokens",
            json={"user": "linus", "scope": "read", "note": "laptop"},
            headers={"X-CSRF-Token": csrf[1]},
        )
        assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    mine = httpx.get(f"{site.url}/api/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert mine.status_code == 200
    assert [(t["user"], t["note"]) for t in mine.json()] == [("linus", "laptop")]


def test_the_tokens_page_makes_shows_once_and_revokes_a_token(site: Site) -> None:
    with httpx.Client(base_url=site.url) as browser:
        assert sign_in(browser, site.url, "grace").status_code == 303
        page = browser.get("/tokens")
        assert page.status_code == 200 and "You have no tokens yet" in page.text
        assert '<option value="admin">' not in page.text  # a viewer is not offered admin tokens
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        made = browser.post(
            "/tokens", data={"scope": "read", "days": "7", "note": "napari", "csrf_token": csrf[1]}
        )
        assert made.status_code == 201
        secret = re.search(r'<code class="secret">([^<]+)</code>', made.text)
        assert secret is not None and secret[1] not in browser.get("/tokens").text  # shown once
        bearer = {"Authorization": f"Bearer {secret[1]}"}
        listed = httpx.get(f"{site.url}/api/tokens", headers=bearer).json()
        assert [(t["user"], t["note"], t["scope"]) for t in listed] == [("grace", "napari", "read")]
        assert browser.post("/tokens", data={"scope": "admin", "csrf_token": csrf[1]}).status_code == 403
        forged = browser.post(f"/tokens/{listed[0]['id']}/revoke", data={"csrf_token": "forged"})
        assert forged.status_code == 403  # a cross-site form cannot revoke it
        browser.post(f"/tokens/{listed[0]['id']}/revoke", data={"csrf_token": csrf[1]})
        assert httpx.get(f"{site.url}/api/tokens", headers=bearer).status_code == 401
    assert (
        httpx.get(f"{site.url}/tokens", follow_redirects=False).headers["location"] == "/login?next=/tokens"
    )


def test_an_invalid_orcid_is_not_kept_and_a_disabled_user_cannot_sign_in(site: Site) -> None:
    with httpx.Client() as browser:
        assert sign_in(browser, site.url, "mallory").status_code == 303
    assert user(site.repository, "mallory").orcid is None  # its check digit is wrong
    added = [
        e for e in audit.entries(site.repository) if e.actor == "mallory" and e.action == "session.sign_in"
    ]
    assert "check digit" in added[-1].details["orcid_refused"]
    accounts.set_disabled(site.repository, ADMIN, "mallory", True)
    with httpx.Client() as browser:
        refused = sign_in(browser, site.url, "mallory")
    assert refused.status_code == 403 and "this account is disabled" in message(refused)
    assert "fairimage_session" not in refused.cookies


def test_orcids_own_provider_gives_the_orcid_as_the_subject(site: Site) -> None:
    with server_for(site, orcid_claim="sub") as server, httpx.Client() as browser:
        assert sign_in(browser, server.url, "0000-0002-9079-593X").status_code == 303
    assert user(site.repository, "0000-0002-9079-593X").orcid == "0000-0002-9079-593X"


def test_a_bad_or_missing_state_is_refused(site: Site) -> None:
    with httpx.Client() as browser:
        callback = callback_for(browser, site.url, "grace")
        forged = browser.get(with_query(callback, state="forgéd-state"))
    assert forged.status_code == 400
    assert message(forged).startswith("the sign-in answer does not belong to the sign-in this browser began")
    with httpx.Client() as browser:  # a callback reaching a browser that began no sign-in
        strange = browser.get(callback)
    assert strange.status_code == 400 and "this browser has no sign-in in progress" in message(strange)
    denied = [
        e for e in audit.entries(site.repository) if e.decision == "denied" and e.action == "session.sign_in"
    ]
    assert any("state mismatch" in e.details["reason"] for e in denied)
    assert all(callback.split("code=")[1][:10] not in str(e.details) for e in denied)  # no code logged


def test_a_replayed_callback_and_a_replayed_code_are_refused(site: Site) -> None:
    with httpx.Client() as browser:
        callback = callback_for(browser, site.url, "grace")
        pending = browser.cookies["fairimage_oidc"]
        assert browser.get(callback).status_code == 303
        again = browser.get(callback)  # the same answer, replayed: the browser's pending sign-in is gone
        assert again.status_code == 400 and "this browser has no sign-in in progress" in message(again)
        browser.cookies.set("fairimage_oidc", pending, domain="127.0.0.1", path="/auth/oidc")
        again = browser.get(callback)  # replayed with the cookie it began with
        assert again.status_code == 400 and "used already (a replayed callback)" in message(again)
        # the old code with a fresh sign-in's state: the provider itself refuses a code used once
        fresh = parse_qs(urlsplit(callback_for(browser, site.url, "grace")).query)
        replayed = browser.get(with_query(callback, state=fresh["state"][0]))
    assert replayed.status_code == 400
    assert "refused the sign-in code: it was used already or has expired (invalid_grant)" in message(replayed)


def test_the_provider_refusing_is_said_plainly(site: Site) -> None:
    with httpx.Client() as browser:
        page = to_provider(browser, site.url)
        abort = browser.get(str(page.url).rstrip("/") + "/abort")  # "cancel" at the provider
        while "/auth/oidc/callback" not in abort.headers.get("location", ""):
            abort = browser.get(urljoin(str(abort.url), abort.headers["location"]))
        answer = browser.get(abort.headers["location"])
    assert "error=access_denied" in abort.headers["location"]
    assert answer.status_code == 400
    assert message(answer).startswith("the provider did not sign you in (access_denied")


def test_an_id_token_for_another_client_is_refused(site: Site) -> None:
    with server_for(site, client_id="fairimage-mixup") as server, httpx.Client() as browser:
        refused = sign_in(browser, server.url, "grace")
    assert refused.status_code == 400
    assert message(refused) == (
        "the ID token was issued for another client, not this repository's ('fairimage-mixup'); refused"
    )


def test_an_expired_id_token_is_refused(site: Site) -> None:
    # the provider stamps this client's ID tokens with a clock two hours slow: expired an hour ago
    with server_for(site, client_id="fairimage-late") as server, httpx.Client() as browser:
        refused = sign_in(browser, server.url, "grace")
    assert refused.status_code == 400
    assert re.match(
        r"the provider's ID token expired at \d{4}-\d\d-\d\d [\d:]+ UTC, before", message(refused)
    )


def test_a_wrong_client_secret_names_the_fix_and_not_the_secret(site: Site) -> None:
    wrong = "not-the-secret-1234"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAIRIMAGE_OIDC_CLIENT_SECRET", wrong)
        settings = load_settings(site.repo)
    assert wrong not in repr(settings) and wrong not in str(settings.model_dump())
    with LiveServer(settings) as server, httpx.Client() as browser:
        refused = sign_in(browser, server.url, "grace")
    assert refused.status_code == 502
    assert message(refused).startswith(
        "the provider refused the client secret (invalid_client); check FAIRIMAGE_OIDC_CLIENT_SECRET"
    )
    assert wrong not in refused.text and SECRET not in refused.text and "Traceback" not in refused.text


def test_an_unreachable_provider_names_the_setting(site: Site) -> None:
    nowhere = f"http://127.0.0.1:{_free_port()}"
    with server_for(site, issuer=nowhere) as server:
        page = httpx.get(f"{server.url}/auth/oidc/login")
    assert page.status_code == 503
    assert message(page) == (
        f"the sign-in provider cannot be reached at its discovery document {nowhere}/.well-known/openid-"
        "configuration (ConnectError); check oidc issuer in fairimage.toml (or FAIRIMAGE_OIDC_ISSUER) and "
        "that the provider is up"
    )
    assert "Traceback" not in page.text and SECRET not in page.text


def test_a_page_that_is_not_a_discovery_document_names_the_setting(site: Site) -> None:
    with server_for(site, issuer=f"{site.url}/nothing") as server:  # a server, but no provider there
        page = httpx.get(f"{server.url}/auth/oidc/login")
    assert page.status_code == 502
    assert "answered HTTP 404 without a discovery document; check oidc issuer" in message(page)


@pytest.mark.parametrize(
    ("oidc", "expected"),
    [
        ({"default_role": "admin"}, "setting oidc.default_role: Value error, admin cannot be the role of"),
        ({"issuer": "http://login.example.org"}, "is not a provider's issuer URL: give the https:// address"),
        ({"scopes": "profile email"}, "lacks the scope openid"),
    ],
)
def test_settings_refuse_what_cannot_work(site: Site, oidc: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(expected)):
        server_for(site, **oidc)


def test_settings_take_the_environment_over_the_file(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAIRIMAGE_OIDC_CLIENT_SECRET", "from-the-environment")
    monkeypatch.setenv("FAIRIMAGE_OIDC_NAME", "ORCID")
    monkeypatch.setenv("FAIRIMAGE_OIDC_ORCID_CLAIM", "sub")
    settings: Any = load_settings(site.repo).oidc
    assert settings.client_secret.get_secret_value() == "from-the-environment"
    assert (settings.name, settings.orcid_claim, settings.client_id) == ("ORCID", "sub", "fairimage")
    assert settings.scopes == "openid profile email orcid" and settings.default_role is Role.VIEWER


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_a_person_signs_in_with_the_provider_in_chromium(site: Site) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"{site.url}/login?next=/search")
        page.get_by_role("link", name="Sign in with Test University").click()
        page.locator('input[name="login"]').fill("hedy")
        page.locator('input[name="password"]').fill("any password")
        page.locator('button[type="submit"]').click()
        page.locator('button[type="submit"]').click()  # the provider's consent form
        page.wait_for_url(f"{site.url}/search")
        assert page.locator("header .account").inner_text().startswith("Access requests")
        assert "hedy" in page.locator("header .account").inner_text()
        browser.close()
    assert user(site.repository, "hedy").role is Role.VIEWER
