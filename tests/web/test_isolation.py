"""A company reads its own flows and nothing else, however it asks; every request is audited.

The app runs for real (uvicorn, chDB, the accounts file): each test is an HTTP request a
company or an adviser could send. A request for another company's data must get exactly
the answer a request for a company that does not exist gets, and no response to a
company may carry a declaration of another operator.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from tests.web.conftest import Site, audited

from vigie.indicators import VISION360

KEYS = [indicator.key for indicator in VISION360.indicators]


def routes(operator: str) -> list[str]:
    """Every company route of the API and the pages, for ``operator`` as written."""
    base = f"/api/companies/{operator}"
    return [
        *(f"{base}/indicators/{key}" for key in KEYS),
        *(f"{base}/indicators/{key}?format=csv" for key in KEYS),
        f"{base}/declarations",
        f"{base}/declarations?page=2&page_size=10",
        f"{base}/declarations?format=csv",
        f"/companies/{operator}",
        f"/companies/{operator}?page=3",
    ]


def test_a_company_reads_its_own_flows(site: Site) -> None:
    acme = site.companies["acme"]
    own = site.declarations_of(acme)
    with site.client("acme") as client:
        assert client.get("/api/me").json()["operators"] == [acme]
        for key in KEYS:
            answer = client.get(f"/api/companies/{acme}/indicators/{key}")
            assert answer.status_code == 200, (key, answer.text)
        listed = client.get(f"/api/companies/{acme}/declarations", params={"page_size": 200})
        ids = {row[1] for row in listed.json()["rows"]}
        assert ids and ids <= own
        exported = client.get(f"/api/companies/{acme}/declarations", params={"format": "csv"})
        assert exported.headers["content-type"].startswith("text/csv")
        lines = exported.text.strip().splitlines()
        assert {line.split(",")[1] for line in lines[1:]} == own
        directions = {line.split(",")[2] for line in lines[1:]}
        assert directions == {"import", "export"}


def test_another_company_is_answered_like_one_that_does_not_exist(site: Site) -> None:
    globex = site.companies["globex"]
    with site.client("acme") as client:
        for other, missing in zip(routes(globex), routes("FR00000000000000"), strict=True):
            theirs, nobody = client.get(other), client.get(missing)
            assert theirs.status_code == nobody.status_code == 404, other
            assert theirs.content == nobody.content, other
            assert globex not in theirs.text


@pytest.mark.parametrize(
    "trick",
    [
        "{other}",
        "{lower}",
        "{own_lower}",
        "{other} ",
        "%20{other}",
        "{other_encoded}",
        "{other_double_encoded}",
        "{own}%00{other}",
        "..%2F{other}",
        "{other_fullwidth}",
        "{own},{other}",
        "%2A",
        "{own}'%20OR%20'1'='1",
    ],
)
def test_case_and_encoding_tricks_reach_nothing(site: Site, trick: str) -> None:
    own, other = site.companies["acme"], site.companies["globex"]
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in other)
    operator = trick.format(
        other=other, own=own, lower=other.lower(), own_lower=own.lower(),
        other_encoded="".join(f"%{ord(c):02X}" for c in other),
        other_double_encoded="".join(f"%25{ord(c):02X}" for c in other),
        other_fullwidth=quote(fullwidth),
    )  # fmt: skip
    theirs = site.declarations_of(other)
    with site.client("acme") as client:
        for path in routes(operator)[:3] + routes(operator)[-3:]:
            answer = client.get(path)
            assert answer.status_code in (404, 422), (path, answer.status_code)
            assert not any(d in answer.text for d in theirs), path
            assert other not in answer.text, path


@pytest.mark.parametrize(
    "query",
    [
        {"importer": "{other}"},
        {"scope": "{other}"},
        {"operator": "{other}", "q": "{other}"},
        {"scope": '["{other}"]', "start": "2000-01-01"},
        {"from": "2000-01-01", "to": "2002-12-31"},
    ],
)
def test_filters_sent_by_the_client_never_widen_the_scope(
    site: Site, query: dict[str, str]
) -> None:
    own, other = site.companies["acme"], site.companies["globex"]
    params = {k: v.format(other=other) for k, v in query.items()}
    allowed = site.declarations_of(own)
    with site.client("acme") as client:
        for path in (f"/api/companies/{own}/declarations", f"/companies/{own}"):
            answer = client.get(path, params={**params, "page_size": 200})
            assert answer.status_code in (200, 400), answer.text
            assert not any(d in answer.text for d in site.declarations_of(other))
        rows = client.get(f"/api/companies/{own}/declarations", params=params).json()
        assert {row[1] for row in rows.get("rows", [])} <= allowed


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"page": 0}, 422),
        ({"page": -1}, 422),
        ({"page_size": 0}, 422),
        ({"page_size": 100_000}, 422),
        ({"page": 100_000}, 200),
        ({"page": "1 OR 1=1"}, 422),
        ({"format": "xlsx"}, 422),
        ({"from": "2026-13-01"}, 400),
        ({"from": "2026-02-01", "to": "2026-01-01"}, 400),
        ({"from": "2000-01-01", "to": "2026-01-01"}, 400),
    ],
)
def test_pagination_and_periods_are_bounded(
    site: Site, params: dict[str, str | int], status: int
) -> None:
    own = site.companies["acme"]
    with site.client("acme") as client:
        answer = client.get(f"/api/companies/{own}/declarations", params=params)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["rows"] == []


def test_staff_pages_are_refused_to_a_company(site: Site) -> None:
    other = site.companies["globex"]
    with site.client("acme") as client:
        for path in ("/api/pilote/alerts", "/api/operators", "/pilote", "/operators"):
            answer = client.get(path, params={"q": other})
            assert answer.status_code == 403, path
            assert other not in answer.text


def test_an_adviser_reads_any_company_and_nothing_that_does_not_exist(site: Site) -> None:
    with site.client("adviser") as client:
        for operator in site.companies.values():
            answer = client.get(f"/api/companies/{operator}/indicators/profile")
            assert answer.status_code == 200 and answer.json()["rows"][0][0] > 0
        missing = client.get("/api/companies/FR00000000000000/indicators/profile")
        assert missing.status_code == 404
        found = client.get("/api/operators", params={"q": site.companies["acme"][2:10]})
        assert site.companies["acme"] in {row[0] for row in found.json()["rows"]}
        injected = client.get("/api/operators", params={"q": "' OR 1=1 --"})
        assert injected.status_code == 200 and injected.json()["rows"] == []
        assert client.get("/api/pilote/engine_hit_rate").status_code == 200


def test_tokens_are_checked_and_end(site: Site) -> None:
    own = site.companies["acme"]
    path = f"/api/companies/{own}/indicators/profile"
    account = site.accounts.get("acme")
    assert account is not None
    expired = site.keys.session("acme", account.password_hash, time.time() - 7200, 3600)
    forged = site.keys.session("acme", "another hash", time.time(), 3600)
    with site.client() as client:
        assert client.get(path).status_code == 401
        for token in (expired, forged, "x.y", expired[:-2] + "AA"):
            answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, token
        wrong = client.post("/api/token", json={"username": "acme", "password": "nope"})
        assert wrong.status_code == 401
        assert client.get("/companies/" + own, follow_redirects=False).status_code == 303


def test_removing_an_account_ends_its_sessions(site: Site) -> None:
    site.accounts.add("temporary", "company", "temporary-pass-1", (site.companies["acme"],))
    with site.client() as client:
        token = client.post(
            "/api/token", json={"username": "temporary", "password": "temporary-pass-1"}
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/me", headers=headers).status_code == 200
        site.accounts.remove("temporary")
        assert client.get("/api/me", headers=headers).status_code == 401


def test_forms_need_their_csrf_token(site: Site) -> None:
    with site.client() as client:
        form = {"username": "acme", "password": "acme-pass-2026"}
        assert client.post("/login", data=form).status_code == 403
        page = client.get("/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        done = client.post("/login", data={**form, "csrf": token}, follow_redirects=False)
        assert done.status_code == 303 and "vigie_session" in done.cookies
        assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
        page = client.get(f"/companies/{site.companies['acme']}")
        assert page.status_code == 200
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        out = client.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert 'vigie_session=""' in out.headers["set-cookie"]


def test_every_request_is_audited(site: Site) -> None:
    with site.client("acme") as client:
        client.get(f"/api/companies/{site.companies['globex']}/declarations")
    made = [r for r in site.responses if r[0]]
    assert len(made) == len(site.responses), "a response without a request id"
    rows = audited(site, [r[0] for r in made])
    missing = [r for r in made if r[0] not in rows]
    assert not missing, f"{len(missing)} requests not audited, e.g. {missing[:3]}"
    for request_id, path, status in made:
        assert rows[request_id][1:] == (path, status)
    denied = [rows[r[0]] for r in made if r[2] == 404 and "/companies/" in r[1]]
    assert denied and {row[0] for row in denied} >= {"acme"}
