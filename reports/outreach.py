"""'Did the outreach work?': one line per list (contacted, held out, response of each, uplift with its interval,
incremental revenue, cost, return on spend) and a chart of the uplifts with their intervals, for the review
(campaign lists, from campaigns.results) and the overview (the last 90 days of reminders)."""

import polars as pl
import pygal

from reports.render import chart
from reports.translations import CLASS_NAMES, OFFER_NAMES, TEXT


def uplift_lines(measured: pl.DataFrame, labels: list[tuple[str, bool]]) -> list[dict]:
    """`measured` (one row per line, measures as columns, as assets.outreach.uplift writes them) as lines to
    show, each with its label and whether it is a total (shown in bold)."""
    rows = zip(measured.to_dicts(), labels, strict=True)
    return [row | {"label": label, "total": total} for row, (label, total) in rows]


def uplift_chart(lines: list[dict], language: str) -> str:
    """The uplift in the share who bought of every line with an interval: bars with error bars, in percentage
    points."""
    shown = [line for line in lines if line["uplift_low"] is not None][::-1]  # pygal draws the first at the bottom
    if not shown:
        return ""
    values = [
        {"value": line["uplift"], "ci": {"low": line["uplift_low"], "high": line["uplift_high"]}} for line in shown
    ]
    low, high = min(0, *(line["uplift_low"] for line in shown)), max(0, *(line["uplift_high"] for line in shown))
    return chart(
        pygal.HorizontalBar, [line["label"] for line in shown], {TEXT[language]["uplift_chart_series"]: values},
        height=max(160, 34 * len(shown) + 90), value_formatter=lambda v: f"{v * 100:+.0f}", show_legend=False,
        range=(low, high), include_x_axis=True,
        # pygal reckons Chinese characters as wide as Latin ones: more room for the labels, or they are cut
        margin_left=7 * max(len(line["label"]) for line in shown) if language == "zh" else 20,
    )  # fmt: skip


def audience_name(audience: str, language: str, labels: dict[str, str] | None = None) -> str:
    """An audience as a reader of `language` knows it: a class, a built-in audience, or a shop's own by its label."""
    built_in = CLASS_NAMES[language].get(audience) or TEXT[language].get(f"audience_{audience}")
    return built_in or (labels or {}).get(audience, audience)


def campaign_lines(results: pl.DataFrame, language: str, audience_labels: dict[str, str] | None = None) -> list[dict]:
    """The review's lines from the `outreach` section of campaigns.results: each list, then each phase's and the
    event's total, then the lists' customers by offer kind (which add up to the event's total)."""
    section = results.filter(pl.col("section") == "outreach")
    if section.is_empty():
        return []
    t = TEXT[language]
    wide = section.pivot(on="measure", index=["dimension", "detail"], values="actual")
    order = {"warm_up": 0, "sprint": 1, "after_glow": 2, "all": 3, "offer": 4}
    wide = wide.sort(pl.col("dimension").replace_strict(order, default=5), pl.col("detail").is_null(), "detail")

    def label(phase: str, audience: str | None) -> tuple[str, bool]:
        if phase == "all":
            return t["all_lists"], True
        if phase == "offer":
            return t["offer_line"].format(offer=OFFER_NAMES[language].get(audience, audience)), False
        if audience is None:
            return t["phase_all_lists"].format(phase=t["phase_" + phase]), True
        return f"{t['phase_' + phase]} · {audience_name(audience, language, audience_labels)}", False

    return uplift_lines(wide, [label(phase, audience) for phase, audience in wide.select("dimension", "detail").rows()])


def reminder_lines(measured: pl.DataFrame, language: str) -> list[dict]:
    """The overview's lines from reminders' results (assets.outreach.uplift.reminder_results): each class, then
    all reminders."""
    t, names = TEXT[language], CLASS_NAMES[language]
    rows = measured.filter(pl.col("dimension").is_in(["class", "all"])).sort(
        pl.col("dimension") == "all", pl.col("value").replace_strict({c: i for i, c in enumerate(names)}, default=99)
    )
    labels = [(t["all_reminders"], True) if dim == "all" else (names.get(value, value), False)
              for dim, value in rows.select("dimension", "value").rows()]  # fmt: skip
    return uplift_lines(rows, labels)


def audience_lines(measured: pl.DataFrame, language: str, audience_labels: dict[str, str]) -> list[dict]:
    """The overview's lines from the shop's own audience lists' results (assets.outreach.uplift.audience_results):
    each audience, all of them, then by offer kind (which adds up to all of them)."""
    t, order = TEXT[language], {"audience": 0, "all": 1, "offer": 2}
    rows = measured.sort(pl.col("dimension").replace_strict(order, default=3), "value")

    def label(dimension: str, value: str) -> tuple[str, bool]:
        if dimension == "all":
            return t["all_audience_lists"], True
        if dimension == "offer":
            return t["offer_line"].format(offer=OFFER_NAMES[language].get(value, value)), False
        return audience_name(value, language, audience_labels), False

    return uplift_lines(rows, [label(*row) for row in rows.select("dimension", "value").rows()])


def points(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}"


def tell_sentence(row: dict, t: dict) -> str:
    """What a list (a campaigns.hold_outs row) will be able to tell, said before it goes out."""
    detectable, uplift = row["detectable_uplift"], row["expected_uplift"]
    if detectable is None:
        return t["too_small_at_all"]
    if uplift is None or uplift <= 0:
        return t["too_small_no_uplift"].format(points=points(detectable))
    if row["can_tell"]:
        return t["can_detect"].format(points=points(detectable), uplift=points(uplift))
    return t["too_small_to_tell"].format(points=points(detectable), uplift=points(uplift))
