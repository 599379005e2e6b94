"""The report's chart: how many differences fall in each size bin, stacked by root cause, drawn by pygal as SVG.

pygal renders on the server (in the report's Lambda), so the page needs no script to show it and the SVG goes inline.
Its tooltip script, which pygal would fetch from the internet, is switched off (`js=[]`), and the inline config
script it always writes for that script is dropped (an XML filter), so the page holds no script at all.
"""

from __future__ import annotations

from typing import Any

import pygal
from pygal.style import Style

from billmig.parity.report import SizeBucket
from billmig.parity.verdicts import Cause

CAUSE_COLOURS: dict[Cause, str] = {
    Cause.PRICING_GROUP_MISMATCH: "#c0392b",
    Cause.MISSING_USAGE: "#d35400",
    Cause.EXTRA_USAGE: "#e67e22",
    Cause.CREDIT_ORDER: "#8e44ad",
    Cause.BALANCE_DRIFT: "#b7950b",
    Cause.PERIOD_MISALIGNMENT: "#2980b9",
    Cause.ROUNDING: "#7f8c8d",
    Cause.UNEXPLAINED_TOTAL: "#566573",
    Cause.UNMAPPED_PRICE: "#16a085",
    Cause.NO_CONTRACT: "#2c3e50",
}


def _without_scripts(root: Any) -> Any:
    for parent in list(root.iter()):
        for child in list(parent):
            if str(child.tag).rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def distribution_svg(distribution: list[SizeBucket]) -> str:
    """An SVG element (no XML declaration) with one series per cause present and one bar per size bin."""
    causes = [cause for cause in Cause if any(cause in bucket.by_cause for bucket in distribution)]
    style = Style(
        background="transparent",
        plot_background="#ffffff",
        font_family="system-ui, sans-serif",
        colors=tuple(CAUSE_COLOURS[cause] for cause in causes) or ("#7f8c8d",),
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=12,
        title_font_size=14,
    )
    chart = pygal.StackedBar(
        style=style,
        js=[],
        disable_xml_declaration=True,
        width=960,
        height=340,
        title="Differences by size and root cause",
        x_title="size of the difference",
        y_title="differences",
        truncate_legend=-1,
        truncate_label=-1,
        print_zeroes=False,
        min_scale=1,
        max_scale=6,
        no_data_text="no differences",
    )
    chart.add_xml_filter(_without_scripts)
    chart.x_labels = [bucket.label for bucket in distribution]
    for cause in causes:
        chart.add(cause.value, [bucket.by_cause.get(cause, 0) for bucket in distribution])
    return str(chart.render(is_unicode=True))
