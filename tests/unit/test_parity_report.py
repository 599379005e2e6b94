"""The parity report from a run's results: counts, order, the chart's bins, the CSV and the page's escaping."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from xml.etree import ElementTree

from billmig.money import format_cents, format_quantity
from billmig.parity.report import COMPLETED, COMPLETED_WITH_ERRORS, SIZE_BUCKETS, build_report, report_as_csv
from billmig.parity.report_chart import distribution_svg
from billmig.parity.report_page import report_as_html
from billmig.parity.verdicts import Approval, Cause, Difference, GateVerdict, LineParity
from hypothesis import given
from hypothesis import strategies as st
from parity_results import CHECKED_AT, FAULTY, HOSTILE_NAME, NAMES, RUN, period, run_results, unchecked


class _References(HTMLParser):
    """Every tag and every address an attribute names (src, href), as a browser would parse the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.addresses: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.addresses += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "srcset", "action")]


def _fetched(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    assert not parser.tags & {"script", "img", "link", "iframe", "object", "embed", "b"}, parser.tags
    return [a for a in parser.addresses if not a.startswith("#")]


def report(**changes):
    return build_report(RUN, run_results(), generated_at=CHECKED_AT, unchecked=unchecked(), names=NAMES, **changes)


def test_the_summary_counts_customers_causes_and_cents() -> None:
    summary = report().summary

    assert summary.customers_checked == 12
    assert summary.customers_within_tolerance == 5
    assert summary.customers_held_back == len(FAULTY) == 7
    assert (summary.customers_failed, summary.customers_skipped) == (1, 1)
    assert summary.lines_excluded == 1
    assert summary.differences == 8
    assert summary.by_cause[Cause.PRICING_GROUP_MISMATCH].model_dump() == {
        "differences": 2,
        "customers": 2,
        "cents": 7400,
    }
    assert summary.cents_of_difference == 12_500 + 5000 + 2400 + 1800 + 1800 + 100 + 2 + 1


def test_a_run_with_unchecked_customers_completed_with_errors() -> None:
    assert (report().status, report().status_detail) == (
        COMPLETED_WITH_ERRORS,
        "completed with errors: 1 failed, 1 skipped",
    )
    clean = build_report(RUN, run_results()[:3], generated_at=CHECKED_AT)
    assert (clean.status, clean.summary.differences, clean.summary.customers_held_back) == (COMPLETED, 0, 0)


def test_differences_are_largest_first_and_invoice_level_ones_carry_the_totals() -> None:
    rows = report().differences

    assert [abs(r.difference_cents) for r in rows] == sorted((abs(r.difference_cents) for r in rows), reverse=True)
    assert rows[0].stripe_customer_id == "cus_grants" and rows[0].line_key is None
    assert (rows[0].stripe_cents, rows[0].metronome_cents) == (15_000, 27_500)
    region = next(r for r in rows if r.stripe_customer_id == "cus_region")
    assert (region.stripe_quantity, region.metronome_quantity, region.stripe_cents, region.metronome_cents) == (
        2500,
        2500,
        5000,
        0,
    )
    assert report().customers[0].stripe_customer_id == "cus_grants"  # customers too: the largest difference first


def test_the_distribution_bins_every_difference_by_size_and_cause() -> None:
    buckets = report().distribution

    assert [b.label for b in buckets] == [label for label, _, _ in SIZE_BUCKETS]
    assert sum(b.count for b in buckets) == 8
    counts = {b.label: {c.value: n for c, n in b.by_cause.items()} for b in buckets if b.count}
    assert counts == {
        "1-99¢": {"missing_usage": 1, "rounding": 1},
        "$1-$9.99": {"unmapped_price": 1},
        "$10-$99.99": {"pricing_group_mismatch": 2, "period_misalignment": 1, "no_contract": 1},
        "$100-$999.99": {"credit_order": 1},
    }


def test_the_gate_verdicts_decide_who_is_held_back() -> None:
    approval = Approval(stripe_customer_id="cus_case", approved_by="ops@example.com", approved_at=CHECKED_AT,
                        reason="customer agreed to the case fix next cycle")  # fmt: skip
    verdicts = {
        "cus_case": GateVerdict(released=True, reason="approved by ops@example.com", approval=approval),
        "cus_clean1": GateVerdict(released=False, reason="no closed billing period has been checked for parity yet"),
    }
    customers = {c.stripe_customer_id: c for c in report(verdicts=verdicts).customers}

    assert not customers["cus_case"].held_back and not customers["cus_case"].passed
    assert customers["cus_clean1"].held_back and customers["cus_clean1"].passed
    assert customers["cus_clean1"].gate_reason == "no closed billing period has been checked for parity yet"


def test_the_csv_has_one_row_per_difference_in_cents_with_formulas_made_inert() -> None:
    text = report_as_csv(report())
    rows = list(csv.DictReader(io.StringIO(text)))

    assert len(rows) == 8
    assert [int(r["difference_cents"]) for r in rows] == [d.difference_cents for d in report().differences]
    hostile = next(r for r in rows if r["stripe_customer_id"] == "cus_hostile")
    assert hostile["customer_name"] == HOSTILE_NAME
    assert hostile["suggested_fix"] == '\'=HYPERLINK("x")'
    assert next(r for r in rows if r["cause"] == "missing_usage")["difference_cents"] == "-2"  # numbers stay numbers


def test_the_page_escapes_user_text_and_fetches_nothing() -> None:
    page = report_as_html(report())

    assert HOSTILE_NAME not in page and "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt; &amp; Sons" in page
    assert "api_calls|plan=&lt;b&gt;pro&lt;/b&gt;" in page
    assert "default-src 'none'" in page
    assert _fetched(page) == []
    assert "@import" not in page and "url(" not in page


def test_the_page_prints_money_exactly_from_cents() -> None:
    huge = period("cus_huge", [LineParity(key="api_calls", stripe_quantity=1e9, metronome_quantity=1e9,
                                          stripe_cents=123_456_789_012_345, metronome_cents=123_456_789_012_346,
                                          within_tolerance=True)])  # fmt: skip
    page = report_as_html(build_report(RUN, [huge], generated_at=CHECKED_AT))

    assert "$1,234,567,890,123.45" in page and "$1,234,567,890,123.46" in page and "+$0.01" in page
    assert "1,000,000,000" in page  # the quantity, not 1e+09


def test_the_chart_has_a_series_per_cause_present_and_no_data_when_clean() -> None:
    svg = distribution_svg(report().distribution)
    assert svg.startswith("<svg") and "<?xml" not in svg and "<script" not in svg
    root = ElementTree.fromstring(svg)
    legends = [t.text for t in root.iterfind(".//{*}g[@class='legends']//{*}text")]
    bars = {
        legends[int(series.get("class", "").split()[1].removeprefix("serie-"))]: [
            int(str(bar.findtext("{*}desc[@class='value']"))) for bar in series.iterfind("{*}g/{*}g[@class='bar']")
        ]
        for series in root.iterfind(".//{*}g[@class='plot']/{*}g")
        if series.find("{*}g[@class='bars']") is not None
    }
    assert bars["pricing_group_mismatch"] == [0, 0, 0, 2, 0, 0]
    assert bars["credit_order"] == [0, 0, 0, 0, 1, 0]
    assert len(bars) == 7 and sum(map(sum, bars.values())) == 8
    empty = distribution_svg(build_report(RUN, run_results()[:3], generated_at=CHECKED_AT).distribution)
    assert "no differences" in empty


def test_a_difference_of_zero_cents_is_binned_with_the_zeros() -> None:
    zero = period(
        "cus_zero",
        [LineParity(key="seat_fee", stripe_cents=0, metronome_cents=0, within_tolerance=True)],
        [Difference(cause=Cause.UNMAPPED_PRICE, line_key="seat_fee", evidence="no mapping", suggested_fix="map it")],
        start=datetime(2026, 2, 1, tzinfo=UTC),
    )
    buckets = build_report(RUN, [zero], generated_at=CHECKED_AT).distribution
    assert buckets[0].by_cause == {Cause.UNMAPPED_PRICE: 1}


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_format_cents_prints_every_amount_exactly(cents: int) -> None:
    text = format_cents(cents, signed=True)
    digits = text.lstrip("+-$").replace(",", "").replace(".", "")
    assert int(digits) * (-1 if text.startswith("-") else 1) == cents
    assert re.fullmatch(r"[+-]?\$\d{1,3}(,\d{3})*\.\d\d", text)


def test_format_quantity_is_the_shortest_exact_decimal() -> None:
    assert [format_quantity(q) for q in (3.0, 1234.5, 0.1, 1.5e-7, 12, 1e20)] == [
        "3",
        "1,234.5",
        "0.1",
        "0.00000015",
        "12",
        "100,000,000,000,000,000,000",
    ]
