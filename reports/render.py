"""Rendering reports: self-contained HTML (inline CSS and SVG charts, no scripts, no
requests), every value from the data escaped."""

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


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined
    )


def chart(kind: type[pygal.graph.graph.Graph], labels: list[str], series: dict[str, list], **options) -> str:
    """An inline SVG chart of pygal's `kind` (Bar, Line, StackedBar ...), without its scripts."""
    defaults = {"width": 720, "height": 320, "legend_at_bottom": True}
    drawing = kind(js=[], disable_xml_declaration=True, style=CHART_STYLE, **defaults | options)
    drawing.x_labels = labels
    for name, values in series.items():
        drawing.add(name, values)
    # pygal inlines a small script for its tooltips even without js files; a report needs none.
    return re.sub(r"<script.*?</script>", "", drawing.render(is_unicode=True), flags=re.DOTALL)


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
