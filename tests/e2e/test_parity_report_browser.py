"""The parity report's HTML page in headless Chromium (Debian's): the summary, the largest-differences table, the
chart's marks and each customer's lines render, user text shows as text, and the page fetches nothing.
Screenshots go to .local/test-output/parity/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from billmig.parity.report import ParityReport, build_report
from billmig.parity.report_page import report_as_html
from parity_results import CHECKED_AT, HOSTILE_NAME, NAMES, RUN, run_results, unchecked
from playwright.sync_api import Page, expect
from suite import REPO

SCREENSHOTS = REPO / ".local" / "test-output" / "parity"

# Every bar pygal drew in the plot (not its overlays): the series' legend name, the value it stands for, its height.
BARS = """svg => {
  const legends = [...svg.querySelectorAll('g.legends g text')].map(t => t.textContent);
  return [...svg.querySelectorAll('g.plot > g.series')].flatMap(series => {
    const index = Number([...series.classList].find(c => c.startsWith('serie-')).slice(6));
    return [...series.querySelectorAll('g.bar')].map(bar => ({
      cause: legends[index],
      value: Number(bar.querySelector('desc.value').textContent),
      height: bar.querySelector('rect').getBBox().height,
    }));
  });
}"""


@pytest.fixture(scope="module")
def report() -> ParityReport:
    return build_report(RUN, run_results(), generated_at=CHECKED_AT, unchecked=unchecked(), names=NAMES)


@pytest.fixture(scope="module")
def report_page(report: ParityReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "report.html"
    path.write_text(report_as_html(report))
    return path


def open_report(page: Page, path: Path) -> list[str]:
    """Load the page from disk; return every other address it asked for and every script dialog it raised."""
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if request.url != path.as_uri() else None)
    page.on("dialog", lambda dialog: (asked.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.goto(path.as_uri())
    return asked


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_summary_and_the_largest_differences_render(report_page: Path, page: Page) -> None:
    assert open_report(page, report_page) == []

    figures = page.locator("#summary .figure").evaluate_all(
        "fs => Object.fromEntries(fs.map(f => [f.dataset.field, f.querySelector('dd').textContent]))"
    )
    assert figures == {
        "customers_checked": "12",
        "customers_within_tolerance": "5",
        "customers_held_back": "7",
        "customers_failed": "1",
        "customers_skipped": "1",
        "periods_checked": "12",
        "differences": "8",
        "lines_excluded": "1",
        "cents_of_difference": "$236.03",
    }
    expect(page.locator("#status")).to_have_text("completed with errors: 1 failed, 1 skipped")
    causes = page.locator("#by-cause tbody tr").evaluate_all("rows => rows.map(r => r.dataset.cause)")
    assert causes == [
        "pricing_group_mismatch",
        "missing_usage",
        "credit_order",
        "period_misalignment",
        "rounding",
        "unmapped_price",
        "no_contract",
    ]

    rows = page.locator("#differences tr.difference")
    expect(rows).to_have_count(8)
    cents = rows.evaluate_all("rows => rows.map(r => Number(r.dataset.cents))")
    assert [abs(c) for c in cents] == sorted((abs(c) for c in cents), reverse=True)
    first = rows.first.locator("td").all_inner_texts()
    assert first[0] == "cus_grants" and first[3] == "credit_order" and first[4:7] == ["+$125.00", "$150.00", "$275.00"]
    hostile = page.locator("#differences tr.difference[data-customer='cus_hostile'] td").first
    assert hostile.inner_text() == HOSTILE_NAME  # shown as text, never run
    expect(page.locator("#unchecked tr[data-outcome='failed']")).to_have_count(1)
    expect(page.locator("#held-back li")).to_have_count(7)
    shot(page, "01-report")


def test_the_page_fits_a_laptop_window_without_scrolling_sideways(report_page: Path, page: Page) -> None:
    """At 1280 px the differences table wraps its evidence and fixes (long grant ids included) and stays inside the
    page: nothing to scroll sideways, the suggested fix in view."""
    page.set_viewport_size({"width": 1280, "height": 900})
    open_report(page, report_page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for box in page.locator("#differences td.fix").evaluate_all(
        "cells => cells.map(c => c.getBoundingClientRect().right)"
    ):
        assert box <= 1280


def test_the_chart_draws_a_bar_per_size_bin_and_cause_that_counts_the_differences(
    report: ParityReport, report_page: Path, page: Page
) -> None:
    assert open_report(page, report_page) == []
    chart = page.locator("#distribution svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 100

    bars: list[dict[str, Any]] = chart.evaluate(BARS)

    expected = {(cause.value, b.label): n for b in report.distribution for cause, n in b.by_cause.items()}
    labels = [b.label for b in report.distribution]
    drawn = {(bar["cause"], labels[i % len(labels)]): bar for i, bar in enumerate(bars)}
    assert len(bars) == len(report.summary.by_cause) * len(labels)  # one bar per cause and bin, empty ones flat
    assert {k: int(b["value"]) for k, b in drawn.items() if b["value"]} == expected
    assert {k for k, b in drawn.items() if b["height"] > 0} == set(expected)  # exactly the non-empty cells show
    assert sum(int(b["value"]) for b in bars) == 8
    fallback = page.locator("#distribution-table tbody td").all_inner_texts()
    assert [int(n) for n in fallback] == [b.count for b in report.distribution]
    page.locator("#chart").screenshot(path=str(SCREENSHOTS / "02-chart.png"))


def test_each_customer_shows_its_lines_side_by_side_with_cause_evidence_and_fix(report_page: Path, page: Page) -> None:
    assert open_report(page, report_page) == []
    expect(page.locator("details.customer")).to_have_count(12)
    expect(page.locator("details.customer[open]")).to_have_count(7)  # the faulty ones open, the clean ones folded

    region = page.locator("details.customer[data-customer='cus_region']")
    line = region.locator("tr.line[data-line='api_calls|region=eu-central'] td").all_inner_texts()
    assert line == ["api_calls|region=eu-central", "2,500", "$50.00", "2,500", "$0.00", "-$50.00", "no"]
    cause = region.locator("table.causes tr.cause-row").all_inner_texts()[0]
    assert "pricing_group_mismatch" in cause and "no rate for eu-central" in cause
    assert "add a rate for region=eu-central" in cause

    licensed = page.locator("details.customer[data-customer='cus_licensed']")
    licensed.locator("summary").click()
    expect(licensed.locator("tr.line[data-line='seat_fee']")).to_contain_text("excluded: licensed fee")
    credits = licensed.locator("tr.part[data-part='credits applied'] td").all_inner_texts()
    assert credits == ["", "-$2.50", "", "-$2.50", "$0.00", ""]
    expect(licensed.locator("p.invoices")).to_contain_text("$50.00 of Stripe's invoice left out of the comparison")
    hostile = page.locator("details.customer[data-customer='cus_hostile'] summary")
    assert HOSTILE_NAME in hostile.inner_text()
    region.scroll_into_view_if_needed()
    region.screenshot(path=str(SCREENSHOTS / "03-customer.png"))
