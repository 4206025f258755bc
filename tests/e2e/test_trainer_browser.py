"""The trainer inbox page in a real headless Chromium: search an intent by its Chinese name,
mark an entity by selecting text, save — and the example lands, pseudonymised, in the area
file. The console runs in this process on a free port (no Rasa needed); labels go to a
scratch copy of data/nlu (INTAKE_NLU_DIR)."""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Iterator

import pytest
from playwright import sync_api

from bot.core.db import session_scope, upgrade_database
from bot.core.settings import load_settings
from bot.core.staff import add_user
from bot.core.training.intents import NLU_DIR
from bot.core.training.models import InboxItem
from tests.e2e.console_thread import console_in_thread, environment
from tests.stack import SCREENSHOTS, open_page

expect = sync_api.expect
TEXT = "我叫陈伟明，电话13812345678，出去旅游半个月电费反而比平时高"
PASSWORD = "trainer-browser-pass"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("trainer-console")
    nlu = root / "data" / "nlu"
    shutil.copytree(NLU_DIR, nlu)
    env = {
        "INTAKE_VAR_DIR": str(root / "var"),
        "DATABASE_URL": f"sqlite:///{root / 'console.db'}",
        "INTAKE_NLU_DIR": str(nlu),
        "CONSOLE_SWEEP_SECONDS": "0",
    }
    with environment(env):
        settings = load_settings()
        upgrade_database(settings.database_url)
        now = dt.datetime(2026, 11, 27, 2, 0)
        with session_scope(settings.database_url) as session:
            add_user(session, "xunlian", PASSWORD, "trainer", "王训练")
            session.add(
                InboxItem(
                    text_key="x",
                    text=TEXT,
                    count=4,
                    reasons=["fallback", "corrected"],
                    predicted_intent="nlu_fallback",
                    confidence=0.16,
                    status="open",
                    context={
                        "previous_bot": "您好，请问办理什么业务？",
                        "next_user": "不是这个意思",
                    },
                    first_seen=now,
                    last_seen=now,
                )
            )
        with console_in_thread(settings) as url:
            yield {"url": url, "nlu": nlu}


@pytest.fixture
def page(browser: "sync_api.Browser", console: dict) -> Iterator["sync_api.Page"]:
    with open_page(browser, 20_000, viewport={"width": 1366, "height": 900}) as opened:
        yield opened


def test_trainer_labels_an_inbox_item_in_the_browser(page: "sync_api.Page", console: dict) -> None:
    page.goto(f"{console['url']}/console/trainer")
    page.fill("input[name=username]", "xunlian")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    item = page.locator(".item").first
    expect(item.locator(".text")).to_have_text(TEXT)
    expect(item.locator(".meta")).to_contain_text("×4")
    expect(item.locator(".context")).to_contain_text("不是这个意思")

    options = page.locator("#intent-options option").evaluate_all("os => os.map(o => o.value)")
    choice = next(o for o in options if o.startswith("计量/电费异议"))
    item.locator("input[name=intent]").fill(choice)

    start = TEXT.index("138")
    item.locator(".text").evaluate(
        """(el, [s, e]) => { const r = document.createRange(); r.setStart(el.firstChild, s);
             r.setEnd(el.firstChild, e); getSelection().removeAllRanges(); getSelection().addRange(r); }""",
        [start, start + 11],
    )
    item.locator("select[name=entity]").select_option("phone")
    item.locator("button.mark").click()
    expect(item.locator(".spans")).to_contain_text("13812345678 → phone")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trainer-inbox.png"), full_page=True)

    item.locator("button.save").click()
    expect(item.locator(".result")).to_contain_text("已写入 meter_dispute.yml")
    written = (console["nlu"] / "meter_dispute.yml").read_text(encoding="utf-8")
    assert "陈伟明" not in written and "13812345678" not in written
    assert "(phone)，出去旅游半个月电费反而比平时高\n" in written
