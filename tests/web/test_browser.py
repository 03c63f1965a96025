"""Every page in a real browser: Debian's chromium, driven by Playwright.

A company logs in through the form and sees its Vision 360 with its charts drawn (each
canvas has painted pixels); it then tries to reach another company by editing the URL,
by the API with its session cookie, by filters, pages and CSV exports, by case and
encoding tricks, and gets nothing. The adviser opens Pilote performance, searches an
operator and opens its 360. Every request the browser made is in the audit table.

Set ``VIGIE_SCREENSHOTS`` to a directory to keep the pages' screenshots there (the
README's come from ``docs/screenshots``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from tests.web.conftest import PASSWORDS, Site, audited

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAINTED = """canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted;
}"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context
        context.close()


class Visit:
    """A logged-in browser page that records the request id of every response."""

    def __init__(self, context: Any, site: Site, account: str) -> None:
        context.clear_cookies()
        self.site = site
        self.page = context.new_page()
        self.responses: list[tuple[str, str, int]] = []
        self.page.on("response", self._record)
        self.page.goto(f"{site.url}/login")
        self.page.fill("input[name=username]", account)
        self.page.fill("input[name=password]", PASSWORDS[account])
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def _record(self, response: Any) -> None:
        path = unquote(response.url.removeprefix(self.site.url).split("?")[0])
        self.responses.append((response.headers.get("x-request-id", ""), path, response.status))

    def open(self, path: str) -> Any:
        answer = self.page.goto(f"{self.site.url}{path}")
        self.page.wait_for_load_state("networkidle")
        return answer

    def charts(self) -> dict[str, int]:
        """Painted pixels of each chart on the page, by indicator."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('canvas[data-chart]')]"
            ".every(c => c.dataset.drawn !== undefined)"
        )
        figures = self.page.query_selector_all("figure.chart")
        return {
            f.get_attribute("data-indicator"): f.query_selector("canvas").evaluate(PAINTED)
            for f in figures
        }

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("VIGIE_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def test_a_company_sees_its_360_with_charts(browser: Any, site: Site) -> None:
    acme = site.companies["acme"]
    visit = Visit(browser, site, "acme")
    assert visit.page.url == f"{site.url}/companies/{acme}"
    painted = visit.charts()
    assert set(painted) >= {"by_country", "by_region", "by_product", "per_week"}
    assert all(pixels > 500 for pixels in painted.values()), painted
    text = visit.page.inner_text("main")
    assert "Flows by partner country" in text and "Declarations and their status" in text
    visit.screenshot("company-360")
    own = site.declarations_of(acme)
    shown = visit.page.eval_on_selector_all(
        "section.declarations tbody tr td:nth-child(2)", "cells => cells.map(c => c.innerText)"
    )
    assert shown and set(shown) <= own
    visit.page.click("nav.pages a[rel=next]")
    visit.page.wait_for_load_state("networkidle")
    assert "page=2" in visit.page.url
    second = visit.page.eval_on_selector_all(
        "section.declarations tbody tr td:nth-child(2)", "cells => cells.map(c => c.innerText)"
    )
    assert second and set(second) <= own and not set(second) & set(shown)
    with visit.page.expect_download() as download:
        visit.page.click("section.declarations a.csv")
    exported = Path(download.value.path()).read_text().splitlines()
    assert {line.split(",")[1] for line in exported[1:]} == own
    assert_audited(site, visit)


def test_a_company_cannot_reach_another_in_the_browser(browser: Any, site: Site) -> None:
    acme, globex = site.companies["acme"], site.companies["globex"]
    theirs = site.declarations_of(globex)
    visit = Visit(browser, site, "acme")
    nobody = visit.open("/companies/FR00000000000000")
    assert nobody.status == 404
    refused = nobody.body()
    encoded = "".join(f"%{ord(c):02X}" for c in globex)
    for path in (
        f"/companies/{globex}",
        f"/companies/{globex.lower()}",
        f"/companies/{encoded}",
        f"/companies/{globex}?page=2&page_size=200",
        f"/companies/{globex}?from=2000-01-01&to=2002-12-31",
    ):
        answer = visit.open(path)
        assert answer.status == 404, path
        assert answer.body() == refused, path
    for path in (
        f"/api/companies/{globex}/declarations?format=csv",
        f"/api/companies/{globex}/indicators/by_country",
        f"/api/companies/{encoded}/declarations",
        "/api/pilote/alerts",
        f"/api/operators?q={globex}",
    ):
        answer = visit.page.request.get(f"{site.url}{path}")
        assert answer.status in (403, 404), path
        assert not any(d in answer.text() for d in theirs), path
    widened = visit.open(f"/companies/{acme}?importer={globex}&scope={globex}&page_size=200")
    assert widened.status == 200
    page_text = visit.page.content()
    assert globex not in page_text and not any(d in page_text for d in theirs)
    assert_audited(site, visit)


def test_the_adviser_reads_pilote_and_any_company(browser: Any, site: Site) -> None:
    acme = site.companies["acme"]
    visit = Visit(browser, site, "adviser")
    assert visit.page.url == f"{site.url}/pilote"
    painted = visit.charts()
    expected = {"declarations_per_day", "hit_rate_per_week", "reference_drift", "by_region"}
    assert set(painted) >= expected
    assert all(pixels > 500 for pixels in painted.values()), painted
    hit_rates = visit.page.inner_text("section.table[data-indicator=hit_rate_by_selection]")
    assert "engine" in hit_rates and "random_audit" in hit_rates
    visit.screenshot("pilote-performance")
    visit.open(f"/operators?q={acme[:8]}")
    visit.screenshot("operators")
    visit.page.click(f"a[href='/companies/{acme}']")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.url == f"{site.url}/companies/{acme}"
    assert all(pixels > 500 for pixels in visit.charts().values())
    assert_audited(site, visit)


def test_login_page(browser: Any, site: Site) -> None:
    page = browser.new_page()
    browser.clear_cookies()
    page.goto(f"{site.url}/companies/{site.companies['acme']}")
    assert page.url == f"{site.url}/login"
    page.fill("input[name=username]", "acme")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong name or password" in page.inner_text("main")
    folder = os.environ.get("VIGIE_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / "login.png"))
    page.close()


def assert_audited(site: Site, visit: Visit) -> None:
    """Every response the browser got carries a request id found in ``web_audit``."""
    assert visit.responses and all(r[0] for r in visit.responses), visit.responses[:3]
    rows = audited(site, [r[0] for r in visit.responses])
    for request_id, path, status in visit.responses:
        assert request_id in rows, (path, status)
        assert rows[request_id][1:] == (path, status)
    visit.page.close()


def test_chromium_is_debians() -> None:
    assert CHROMIUM.exists() and shutil.which("chromium") == str(CHROMIUM)
