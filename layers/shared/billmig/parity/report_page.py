"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

The page's Content-Security-Policy forbids every fetch, so it shows the same from S3, a laptop or an email attachment.
Jinja2 escapes every value (customer names, line keys and evidence come from user data); the chart's SVG is the one
piece inserted as markup, and pygal's serializer escapes its labels.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from billmig.money import format_cents, format_quantity
from billmig.parity.report import ParityReport
from billmig.parity.report_chart import CAUSE_COLOURS, distribution_svg

TEMPLATE = "report_page.html"


def _cents(cents: int | None, signed: bool = False) -> str:
    return "" if cents is None else format_cents(cents, signed=signed)


def _quantity(quantity: float | None) -> str:
    return "" if quantity is None else format_quantity(quantity)


def _day(instant: datetime) -> str:
    return f"{instant:%Y-%m-%d}"


def _period(start: datetime, end: datetime) -> str:
    return f"{_day(start)} .. {_day(end)}"


def _difference(stripe: int | None, metronome: int | None) -> int | None:
    return None if stripe is None or metronome is None else metronome - stripe


_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(cents=_cents, quantity=_quantity, day=_day)
_environment.globals.update(period=_period, difference=_difference, cause_colours=CAUSE_COLOURS)


def report_as_html(report: ParityReport) -> str:
    chart = Markup(distribution_svg(report.distribution))  # noqa: S704 - pygal's own serializer escaped the labels
    return _environment.get_template(TEMPLATE).render(report=report, chart=chart)
