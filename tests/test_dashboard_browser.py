"""The dashboard in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver` packages) driven by Selenium, against a real table-evaluator search.

The page loads with no console error, its table shows the store's trials, sorting and
filtering work, the charts draw, a trial page shows the generated source and its
per-epoch plot, and the page follows a store that is being written."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the dashboard's extra: pip install 'nasforge[dashboard]'")
pytest.importorskip("selenium", reason="Selenium drives the browser: the dev extra")

import torch
from click.testing import CliRunner
from nasforge.codegen import generate
from nasforge.grammar import parse
from nasforge.runtime.cli import cli
from nasforge.runtime.dashboard.app import create_app
from nasforge.runtime.dashboard.serve import Background
from nasforge.runtime.search.store import TrialRecord, TrialStore
from search_doubles import write_nb201_table
from selenium import webdriver as selenium_webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="headless Chromium is not installed: apt-get install chromium chromium-driver "
    "(Debian's packages; .ci/run installs them)",
)

WAIT_STEPS = 300  # x 0.1 s: bounded waits for the page


@pytest.fixture(scope="module")
def search(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    threads = torch.get_num_threads()
    table = write_nb201_table(tmp_path_factory.mktemp("table") / "nb201.csv")
    out = tmp_path_factory.mktemp("search") / "run"
    result = CliRunner().invoke(cli, [
        "search", "--space", "nb201", "--evaluator", "table", "--table", str(table),
        "--strategy", "reinforce", "--trials", "48", "--batch", "4", "--out", str(out),
        "--no-progress", "--no-onnx",
    ])  # fmt: skip
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    yield out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = Options()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1600"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = selenium_webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def stored_ids(out: Path) -> list[int]:
    with sqlite3.connect(f"file:{out / 'search.db'}?mode=ro", uri=True) as db:
        return [i for (i,) in db.execute("SELECT id FROM trials ORDER BY id")]


def wait_for(condition: Any, what: str) -> None:
    for _ in range(WAIT_STEPS):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"the page did not {what}")


def open_page(driver: Any, url: str) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    wait_for(lambda: driver.execute_script("return document.body.dataset.loaded") == "true", "load")


def console_errors(driver: Any) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def column(driver: Any, index: int) -> list[str]:
    cells = driver.find_elements(By.CSS_SELECTOR, f"#trials tbody tr td:nth-child({index})")
    return [cell.text for cell in cells]


# How many pixels of a canvas are drawn, and how many points its chart holds.
DRAWN = """
const canvas = document.getElementById(arguments[0]);
const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let drawn = 0;
for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) drawn++; }
const chart = Chart.getChart(canvas);
return [drawn, chart.data.datasets.reduce((n, d) => n + d.data.length, 0), canvas.offsetWidth];
"""


def test_the_main_page_shows_the_search(browser: Any, search: Path) -> None:
    with Background(create_app(search)) as served:
        open_page(browser, served.url)
        assert console_errors(browser) == []
        ids = [int(text) for text in column(browser, 2)]
        assert sorted(ids) == stored_ids(search)
        assert browser.find_element(By.ID, "state").text == "finished"
        assert "48 of 48 trials" in browser.find_element(By.ID, "progress-text").text
        for chart in ("chart-reward", "chart-accuracy", "chart-quarters", "chart-steps"):
            drawn, points, width = browser.execute_script(DRAWN, chart)
            assert width > 0 and points > 0 and drawn > 1000, chart
        # The table evaluator records no parameters or multiply-adds: those charts say so.
        assert browser.find_element(By.ID, "chart-pareto-parameters-empty").is_displayed()

        browser.find_element(By.CSS_SELECTOR, '#trials th[data-key="reward"]').click()
        rewards = [float(text) for text in column(browser, 3)]
        assert rewards == sorted(rewards, reverse=True)
        browser.find_element(By.CSS_SELECTOR, '#trials th[data-key="reward"]').click()
        rewards = [float(text) for text in column(browser, 3)]
        assert rewards == sorted(rewards)
        browser.find_element(By.CSS_SELECTOR, '#trials th[data-key="rank"]').click()
        ranks = [int(text) for text in column(browser, 1) if text]
        assert ranks == list(range(1, len(ranks) + 1))

        browser.find_element(By.ID, "filter").send_keys("avgpool3x3(S0)")
        archs = column(browser, 9)
        assert archs and all("avgpool3x3(S0)" in arch for arch in archs)
        assert console_errors(browser) == []


def test_a_trial_page_shows_the_generated_source(browser: Any, search: Path) -> None:
    with sqlite3.connect(f"file:{search / 'search.db'}?mode=ro", uri=True) as db:
        trial_id, arch = db.execute("SELECT id, arch FROM trials WHERE status = 'ok'").fetchone()
    with Background(create_app(search)) as served:
        browser.get_log("browser")
        browser.get(f"{served.url}trial/{trial_id}")
        wait_for(lambda: browser.find_elements(By.ID, "source"), "show the source")
        shown = browser.find_element(By.ID, "source").text
        assert all(line.strip() in shown for line in generate(parse(arch)).splitlines())
        assert browser.find_element(By.ID, "arch").text == arch
        links = browser.find_elements(By.CSS_SELECTOR, "#downloads a")
        assert [link.text for link in links] == ["model.py"]
        assert console_errors(browser) == []


def test_the_page_follows_a_store_being_written(browser: Any, tmp_path: Path) -> None:
    """Trials stored while the page is open appear without a reload; a trial's per-epoch
    metrics are drawn on its page."""
    epochs = [{"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.2 / e, "train_acc": 0.3 * e,
               "val_acc": 0.28 * e} for e in (1, 2, 3)]  # fmt: skip
    arch = "cnn input 1x8x8 classes 10; L1: conv 3x3 n8"
    store = TrialStore.create(tmp_path / "search.db", {"trials": 3})
    with store, Background(create_app(tmp_path, min_interval=0.0)) as served:
        open_page(browser, served.url)
        assert column(browser, 2) == []
        for i in (1, 2):
            store.add_trial(TrialRecord(
                    id=i, step=0, slot=i - 1, arch=arch, status="ok", reward=0.5 + i / 10,
                    metrics={"epochs": epochs}, parameters=1000 * i, macs=9000 * i,
                    seconds=1.0, finished_at=time.time(),
                ))  # fmt: skip
        wait_for(lambda: sorted(column(browser, 2)) == ["1", "2"], "show the new trials")
        wait_for(
            lambda: browser.execute_script(DRAWN, "chart-pareto-parameters")[1] > 0,
            "draw the Pareto chart",
        )
        assert console_errors(browser) == []
        browser.get(f"{served.url}trial/2")
        wait_for(
            lambda: browser.execute_script(
                "return window.Chart && Chart.getChart('chart-epochs') !== undefined"
            ),
            "plot",
        )
        drawn, points, _ = browser.execute_script(DRAWN, "chart-epochs")
        assert points == 4 * len(epochs) and drawn > 1000
        assert console_errors(browser) == []
