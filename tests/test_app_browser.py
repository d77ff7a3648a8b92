"""The web app in a real browser: Playwright driving Debian's Chromium (never `playwright install`)."""

from __future__ import annotations

import re

import pytest
from app_fixtures import CHROMIUM_ARGS, PROMPT, REPO_ROOT, chromium_path, running_studio
from playwright.sync_api import expect, sync_playwright

from engine.zoo import default_model_name, read_card

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips these for a quick loop

DEFAULT_MODEL = default_model_name()  # pyramidal-wan-tiny once the zoo is shipped, else random-tiny
DEFAULT_SCHEDULE = read_card(DEFAULT_MODEL).schedule
SCREENSHOT = REPO_ROOT / "outputs" / "app-screenshot.png"
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    executable = chromium_path()
    with running_studio(tmp_path_factory.mktemp("browser")) as studio, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(studio.url)
        # The page load fills the model list (the engine is imported lazily, after the page is up).
        expect(page.locator("#model input")).to_have_value(
            re.compile(re.escape(DEFAULT_MODEL)), timeout=WAIT_MS
        )
        yield page
        browser.close()


def test_generate_shows_each_stage_then_the_video(page):
    page.locator("#prompt textarea").fill(PROMPT)
    schedule = page.locator("#schedule :is(input, textarea)")
    expect(schedule).to_have_value(DEFAULT_SCHEDULE)  # the model's default schedule
    expect(page.locator(f"#presets input[value='{DEFAULT_SCHEDULE}']")).to_be_checked()
    page.locator("#generate-btn").click()

    previews = page.locator("#stage-previews .thumbnail-item")
    expect(previews).to_have_count(3, timeout=WAIT_MS)
    video = page.locator("#final-video video")
    expect(video).to_be_visible(timeout=WAIT_MS)
    expect(video).to_have_attribute("src", re.compile(re.escape(DEFAULT_SCHEDULE) + r"-seed\d+\.mp4"))
    captions = page.locator("#stage-previews .caption-label").all_inner_texts()
    assert [c.split(" · ")[0] for c in captions] == ["stage 0", "stage 1", "stage 2"]
    assert "5×32×32 px" in captions[0] and "17×128×128 px" in captions[2]
    readout = page.locator("#readout")
    expect(readout).to_contain_text("TFLOPs")
    expect(readout).to_contain_text("of this model's 0-0-50")
    seed = page.locator("#seed input").input_value()
    expect(readout).to_contain_text(f"seed {seed}")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    print(f"screenshot: {SCREENSHOT}")


def test_bad_input_shows_a_message_not_a_trace(page):
    page.locator("#prompt textarea").fill("")
    page.locator("#generate-btn").click()
    expect(page.get_by_text("The prompt is empty", exact=False).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)

    page.locator("#prompt textarea").fill(PROMPT)
    schedule = page.locator("#schedule :is(input, textarea)")
    schedule.fill("20-x-10")
    expect(page.locator("#schedule-note")).to_contain_text("'x' is not a whole number", timeout=WAIT_MS)
    page.locator("#generate-btn").click()
    expect(page.get_by_text("'x' is not a whole number").nth(1)).to_be_visible(
        timeout=WAIT_MS
    )  # + error toast
    page.locator("#presets").get_by_text("20-20-10").click()  # a preset fills the schedule box
    expect(schedule).to_have_value("20-20-10")
    expect(page.locator("#schedule-note")).to_contain_text("OK: 20 + 20 + 10 = 50 steps")


def test_stop_cancels_a_running_generation(page):
    page.locator("#prompt textarea").fill(PROMPT)
    page.locator("#schedule :is(input, textarea)").fill("200-200-200")
    page.locator("#generate-btn").click()
    # stop once the first stage's preview shows; 200 full-resolution steps remain, seconds of work
    # (the readout, not the gallery, tells this run from an earlier test's: it names the schedule)
    readout = page.locator("#readout")
    expect(readout).to_contain_text(re.compile(r"200-200-200[\s\S]*first stage preview"), timeout=WAIT_MS)
    page.locator("#stop-btn").click()
    expect(page.get_by_text("The generation was cancelled", exact=False).first).to_be_visible(timeout=WAIT_MS)
    expect(readout).to_contain_text("Stopped.")
    expect(page.locator("#stage-previews .thumbnail-item")).not_to_have_count(3)
    expect(page.locator("#final-video video")).to_have_count(0)


def test_learn_tab_plots_and_computes_the_paper_table(page):
    page.get_by_role("tab", name="Learn").click()
    table = page.locator("#flops-table")
    expect(table).to_contain_text(re.compile(r"2 × 12,59\d = 25,18\d"), timeout=WAIT_MS)  # paper: 2 × 12,592
    expect(table).to_contain_text("22.40%")
