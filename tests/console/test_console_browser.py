"""The console in a real browser: Debian's chromium, headless, driven by selenium through Debian's
chromium-driver, against a real ``serve``. One browser for the module; a screenshot of every page
goes to ``<basetemp>/console-screenshots/``.

The flow of issue 13 item 8: sign in (with the keyboard), the overview with the stale list marked,
a decision found by a national-form number, a case raised by a synthetic campaign (refused calls
through the serve's own ``/v1/check`` from one account, the early warning's ``refused`` rule of the
test config firing on them, its alert opening the case), a notice, an early suspension refused, the
suspension after the notice period, the originator's next call rejected in the decisions page, an
appeal and the reinstatement. Then: no session shows the sign-in page; a reseller's operator reaches
nothing of another tenant; a form without its CSRF token is refused; a viewer cannot act.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.console.console_gate import NOTICE_PERIOD_S, PASSWORD, ConsoleGate
from tests.polls import poll_until

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# CI installs both (scripts/install-test-deps.sh): there a missing browser fails the run, it is not skipped
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER) and not os.environ.get("CI"),
                                reason="Debian's chromium and chromium-driver (scripts/install-test-deps.sh)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1400")


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleGate]:
    """The console's gate with the early warning on (tests/console/console_gate.py EARLY_WARNING)."""
    started = ConsoleGate(Path(tmp_path_factory.mktemp("console-gate")), early_warning=True).start()
    yield started
    started.stop()


CAMPAIGN = ("13900139000", "18612345678") * 3  # the national list's and acme's own list's: each refused
CAMPAIGN_POLLS = 3000  # the alert comes once the campaign's 5 s slot has closed (the 1 s checkpoint, on the clock)


@pytest.fixture(scope="module")
def campaign_case(gate: ConsoleGate) -> str:
    """A synthetic campaign from acme's API account: the case the early warning opens on it."""
    for number in CAMPAIGN:
        assert gate.check(number)["reason"] in ("national_dnc", "tenant_dnc")
    gate.clock.advance(timedelta(seconds=6))  # the gate's one clock: its next checkpoint closes the 5 s slot
    opened: list[str] = []

    def case_opened() -> bool:
        case_id = gate.open_case_of("acme-api")
        opened.extend([case_id] if case_id else [])
        return bool(opened)

    asyncio.run(poll_until(case_opened, "the case the campaign's alert opens", CAMPAIGN_POLLS))
    return opened[0]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "console-screenshots"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


NAVIGATION_DEADLINE = 30  # a safety bound on one page load, not a speed target


def navigating(browser: WebDriver, step: Callable[[], object]) -> None:
    """Do ``step`` (a click, an Enter, a submit) and wait until the browser has left the page it was on."""
    page = browser.find_element(By.TAG_NAME, "html")
    step()

    def left(_: WebDriver) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:  # chromium's word for it while the old document goes away
            return "does not belong to the document" in str(exc)
        return False

    WebDriverWait(browser, NAVIGATION_DEADLINE).until(left)


def click(browser: WebDriver, by: str, value: str) -> None:
    navigating(browser, browser.find_element(by, value).click)


def shoot(browser: WebDriver, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    assert browser.save_screenshot(str(path)), name
    assert path.stat().st_size > 1000


def sign_in(browser: WebDriver, gate: ConsoleGate, name: str) -> None:
    browser.delete_all_cookies()
    browser.get(gate.base + "/console/login")
    field = browser.find_element(By.ID, "name")
    field.send_keys(name, Keys.TAB)  # the keyboard alone: type, tab to the password, enter submits
    navigating(browser, lambda: browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER))
    assert browser.current_url.endswith("/console/"), browser.current_url


def act(browser: WebDriver, action: str, reason: str) -> None:
    Select(browser.find_element(By.ID, "action")).select_by_value(action)
    browser.find_element(By.ID, "reason").send_keys(reason)
    click(browser, By.CSS_SELECTOR, "#act button[type=submit]")


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def test_the_operators_flow(gate: ConsoleGate, campaign_case: str, browser: WebDriver, shots: Path) -> None:
    # a call to a listed number, dialled in national form (the campaign's calls came before it)
    listed = gate.check("138 0013 8000")
    assert listed["reason"] == "national_dnc"
    gate.wait_audited(listed["decision_id"])

    browser.get(gate.base + "/console/login")
    shoot(browser, shots, "01-sign-in")
    sign_in(browser, gate, "ann")
    assert browser.find_element(By.CSS_SELECTOR, 'tr.stale[data-list="national"]').is_displayed()
    assert "STALE" in browser.find_element(By.CSS_SELECTOR, 'tr[data-list="national"]').text
    assert browser.find_elements(By.CSS_SELECTOR, "figure svg")
    shoot(browser, shots, "02-overview-stale-list")

    click(browser, By.LINK_TEXT, "Decisions")
    navigating(browser, lambda: browser.find_element(By.ID, "number").send_keys("13800138000", Keys.ENTER))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr[data-reason=national_dnc]")
    assert len(rows) == 1, [r.text for r in rows]
    shoot(browser, shots, "03-decisions-by-national-number")
    navigating(browser, rows[0].find_element(By.TAG_NAME, "a").click)
    assert listed["decision_id"] in browser.find_element(By.TAG_NAME, "h1").text
    assert "national_dnc" in text_of(browser, "record")
    shoot(browser, shots, "04-decision-record")

    click(browser, By.LINK_TEXT, "Alerts")
    alerts = text_of(browser, "alerts")
    assert "refused" in alerts, alerts
    assert "acme-api" in alerts, alerts
    shoot(browser, shots, "05-alerts")
    click(browser, By.LINK_TEXT, "Cases")
    click(browser, By.LINK_TEXT, campaign_case)
    assert text_of(browser, "case-state") == "open"
    assert browser.find_elements(By.CSS_SELECTOR, "figure svg rect")  # the originator's windows
    shoot(browser, shots, "06-case-opened-by-the-campaign")

    act(browser, "notice", "6 calls in a minute to listed numbers")
    assert text_of(browser, "case-state") == "noticed"
    shoot(browser, shots, "07-notice-sent")

    act(browser, "suspend", "suspend before the notice period")
    assert "notice period runs until" in text_of(browser, "refused")
    assert text_of(browser, "case-state") == "noticed"
    shoot(browser, shots, "08-early-suspension-refused")

    gate.clock.advance(timedelta(seconds=NOTICE_PERIOD_S + 1))
    act(browser, "suspend", "the notice period has run")
    assert text_of(browser, "case-state") == "suspended"
    assert text_of(browser, "case-standing") == "suspended"
    shoot(browser, shots, "09-suspended-after-the-period")

    rejected = gate.check("13900138888")
    assert rejected["reason"] == "originator_suspended"
    gate.wait_audited(rejected["decision_id"])
    click(browser, By.LINK_TEXT, "Decisions")
    browser.find_element(By.ID, "originator").send_keys("acme-api")
    Select(browser.find_element(By.ID, "reason")).select_by_value("originator_suspended")
    click(browser, By.CSS_SELECTOR, "#search button[type=submit]")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr[data-reason=originator_suspended]")
    assert len(rows) == 1
    assert "13900138888" in rows[0].text
    shoot(browser, shots, "10-next-call-rejected")

    browser.get(gate.base + f"/console/cases/{campaign_case}?tenant=acme")
    act(browser, "appeal", "the originator appeals: the calls were to its own customers")
    assert text_of(browser, "case-state") == "appealed"
    act(browser, "reinstate", "appeal granted: consent records supplied")
    assert text_of(browser, "case-state") == "reinstated"
    assert text_of(browser, "case-standing") == "clear"
    timeline = text_of(browser, "timeline")
    for actor_line in ("console:ann", "reinstate", "suspend", "notice"):
        assert actor_line in timeline
    shoot(browser, shots, "11-reinstated")
    assert gate.check("13900138889")["reason"] == "allowed_clear"

    browser.get(gate.base + "/console/?tenant=acme&lang=zh")
    assert "已过期" in browser.find_element(By.CSS_SELECTOR, 'tr[data-list="national"]').text
    shoot(browser, shots, "12-overview-in-chinese")
    browser.get(gate.base + "/console/?lang=en")


def test_no_session_shows_the_sign_in_page(gate: ConsoleGate, browser: WebDriver, shots: Path) -> None:
    browser.delete_all_cookies()
    browser.get(gate.base + "/console/cases?tenant=acme")
    assert browser.current_url.endswith("/console/login")
    assert browser.find_element(By.ID, "password").get_attribute("type") == "password"
    shoot(browser, shots, "13-no-session")


def test_a_resellers_operator_reaches_nothing_of_another_tenant(gate: ConsoleGate, campaign_case: str,
                                                                browser: WebDriver, shots: Path) -> None:
    gate.alert("acme", "acme-dialer-2", "campaign-volume-2")
    sign_in(browser, gate, "bob")
    assert "beta" in browser.find_element(By.TAG_NAME, "h1").text
    for path in ("/console/?tenant=acme", "/console/cases?tenant=acme", "/console/alerts?tenant=acme",
                 f"/console/cases/{campaign_case}?tenant=acme", f"/console/cases/{campaign_case}"):
        browser.get(gate.base + path)
        assert text_of(browser, "refused") in ("no such tenant", "no such case"), path
    shoot(browser, shots, "14-other-tenant-refused")
    browser.get(gate.base + "/console/cases?tenant=beta")
    assert "case-campaign" not in text_of(browser, "cases")
    assert campaign_case not in text_of(browser, "cases")
    # a form of bob's own page, pointed at acme's case: refused, and acme's case is unchanged
    browser.get(gate.base + "/console/alerts?tenant=beta")
    navigating(browser, lambda: browser.execute_script(
        "const f = document.querySelector('header form.inline'); f.action = '/console/cases/case-campaign-volume-2/"
        "actions'; for (const [k, v] of [['tenant', 'acme'], ['action', 'warn'], ['reason', 'x']]) {"
        " const i = document.createElement('input'); i.name = k; i.value = v; i.type = 'hidden'; f.appendChild(i); }"
        " f.submit();"))
    assert text_of(browser, "refused") == "no such tenant"


def test_a_form_without_its_csrf_token_is_refused(gate: ConsoleGate, browser: WebDriver, shots: Path) -> None:
    sign_in(browser, gate, "ann")
    browser.get(gate.base + "/console/cases/case-campaign-volume-2?tenant=acme")
    browser.execute_script("document.querySelector('#act input[name=csrf]').remove();")
    act(browser, "warn", "a form without its token")
    assert "CSRF" in text_of(browser, "refused")
    shoot(browser, shots, "15-csrf-refused")
    browser.get(gate.base + "/console/cases/case-campaign-volume-2?tenant=acme")
    assert text_of(browser, "case-state") == "open"


def test_a_viewer_cannot_act(gate: ConsoleGate, browser: WebDriver, shots: Path) -> None:
    sign_in(browser, gate, "vic")
    browser.get(gate.base + "/console/cases/case-campaign-volume-2?tenant=acme")
    assert not browser.find_elements(By.ID, "act")
    # the operator's form, posted with the viewer's session and token: refused
    token = browser.find_element(By.CSS_SELECTOR, "header input[name=csrf]").get_attribute("value")
    navigating(browser, lambda: browser.execute_script(
        "const f = document.createElement('form'); f.method = 'post';"
        " f.action = '/console/cases/case-campaign-volume-2/actions';"
        " for (const [k, v] of [['csrf', arguments[0]], ['tenant', 'acme'], ['action', 'warn'], ['reason', 'x']]) {"
        " const i = document.createElement('input'); i.name = k; i.value = v; i.type = 'hidden'; f.appendChild(i); }"
        " document.body.appendChild(f); f.submit();", token))
    assert text_of(browser, "refused") == "a viewer cannot act"
    shoot(browser, shots, "16-viewer-refused")
    browser.get(gate.base + "/console/cases/case-campaign-volume-2?tenant=acme")
    assert text_of(browser, "case-state") == "open"
