"""Rendering reports: self-contained HTML (inline CSS and SVG charts, no scripts, no
requests), every value from the data escaped."""

import base64
import re
from functools import cache
from pathlib import Path

import pygal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pygal.style import Style

from pipelines.privacy import mask
from reports.translations import ACTIONS, TEXT

TEMPLATES = Path(__file__).parent / "templates"
# Latin first, then the Chinese fonts readers have: PingFang / Hiragino (macOS), Microsoft YaHei (Windows),
# Noto Sans CJK / Source Han Sans / WenQuanYi (Linux; Debian's fonts-noto-cjk).
FONT_STACK = (
    '-apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", '
    '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif'
)
CHART_STYLE = Style(
    background="white",
    plot_background="white",
    font_family=FONT_STACK,
    colors=("#2f6f8f", "#e07a2f", "#7a9a3a", "#9a4a7a", "#c2a23a", "#4aa3a3", "#b04a3a", "#7a7a7a"),
)


EMBEDDED_UP_TO = 2_000_000  # bytes: a larger file is linked by its absolute path, not carried in the report


def attachment(path: Path, media_type: str = "text/csv") -> dict[str, str]:
    """A link to a file of the output folder that still works when the report is e-mailed or moved: the file
    carried inside the report (a `data:` link that downloads it), or, when large, its absolute address."""
    if path.stat().st_size > EMBEDDED_UP_TO:
        return {"name": path.name, "href": path.resolve().as_uri()}
    return {"name": path.name, "href": f"data:{media_type};base64,{base64.b64encode(path.read_bytes()).decode()}"}


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined
    )


def chart(
    kind: type[pygal.graph.graph.Graph], labels: list[str], series: dict[str, list | tuple[list, dict]], **options
) -> str:
    """An inline SVG chart of pygal's `kind` (Bar, Line, StackedBar ...), without its scripts; values with
    thousands separators unless `value_formatter` says otherwise, legends in full below the plot. A series is
    its values, or its values and pygal's options for it; `css` rules may start with `{{id}}` (this chart)."""
    defaults = {
        "width": 720,
        "height": 320,
        "legend_at_bottom": True,
        "truncate_legend": -1,
        "value_formatter": lambda v: f"{v:,.0f}",
        "legend_at_bottom_columns": legend_columns(list(series)),
    }
    css = [*pygal.Config().css, *("inline:" + rule for rule in options.pop("css", []))]
    if "x_labels_major" in options:
        options["x_labels_major"] = [as_measured(label) for label in options["x_labels_major"]]
    drawing = kind(js=[], css=css, disable_xml_declaration=True, style=CHART_STYLE, **defaults | options)
    drawing.x_labels = [as_measured(label) for label in labels]
    for name, values in series.items():
        values, extra = values if isinstance(values, tuple) else (values, {})
        drawing.add(name, values, **extra)
    svg = drawing.render(is_unicode=True)
    chart_id = re.search(r'id="(chart-[^"]+)"', svg).group(1)
    # pygal inlines a small script for its tooltips even without js files, and names itself as the title a
    # browser shows on hover: a report needs neither.
    svg = re.sub(r"<script.*?</script>|<title>Pygal</title>", "", svg, flags=re.DOTALL)
    return svg.replace("{{id}}", f"#{chart_id} ")


def as_measured(label: str) -> str:
    """`label` with a zero-width space after each Chinese character. pygal reserves room for a label (and
    places the legend below it) by counting characters at about half a character's height each; a Chinese
    character is twice that wide, and a long rotated label would run into the legend. The invisible spaces
    make the count match the width."""
    return "".join(c + "\u200b" if ord(c) > 0x2E80 else c for c in label)


def legend_columns(names: list[str], width: int = 680) -> int:
    """As many legend columns as the longest name leaves room for (pygal's legend text is about 16 px high,
    a Chinese character as wide, a Latin one about half), so that no name runs into the next."""
    longest = max((sum(16 if ord(c) > 0x2E80 else 9 for c in name) + 30 for name in names), default=1)
    return max(1, min(len(names), width // longest))


def money(currency: str):
    """A value formatter: the currency and whole units with thousands separators."""
    return lambda v: f"{currency} {v:,.0f}"


def bar_chart(title: str, labels: list[str], series: dict[str, list[float]], percent: bool = False) -> str:
    """A bar chart, values as percentages if `percent`."""
    formatter = {"value_formatter": lambda v: f"{v:.0%}"} if percent else {}
    return chart(pygal.Bar, labels, series, title=title, x_label_rotation=20, print_values=False, **formatter)


def render(template: str, language: str, **context) -> str:
    return (
        environment()
        .get_template(template)
        .render(
            t=TEXT[language], actions=ACTIONS[language], language=language, mask=mask, font_stack=FONT_STACK, **context
        )
    )


def figure(measure: str, value: float | None) -> str:
    """A figure as a reader wants it: money and counts whole, ratios with decimals, rates in percent."""
    if value is None:
        return "–"
    if "rate" in measure:
        return f"{value:.1%}"
    if measure in ("average_order_value", "items_per_order"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"
