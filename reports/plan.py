"""The event's plan, before it starts: each goal with its planning band, and each list with the share it holds
out and what that will be able to tell. From campaigns.goals and campaigns.hold_outs."""

import polars as pl

from pipelines.calendar import Event
from reports.outreach import audience_name, points, tell_sentence
from reports.render import figure, render
from reports.translations import TEXT

SHOWN = ("revenue", "revenue_new", "revenue_returning", "buyers", "new_buyers", "returning_buyers", "orders",
         "average_order_value")  # fmt: skip


def band_title(band: tuple[float, float] | None, t: dict) -> str:
    """The band's column title with its percentiles (10th–90th; `band`: assets.campaigns.bands.band_of)."""
    low, high = band or (0.1, 0.9)
    return t["band"].format(low=round(low * 100), high=round(high * 100))


def pooling_advice(hold_outs: pl.DataFrame, pooled: float | None, t: dict) -> str | None:
    """The advice to pool when no list of the event can tell its uplift alone; None when one can."""
    if hold_outs.is_empty() or hold_outs["can_tell"].any():
        return None
    return t["none_can_tell"].format(points=points(pooled)) if pooled else t["none_can_tell_at_all"]


def list_rows(hold_outs: pl.DataFrame, language: str, audience_labels: dict[str, str] | None = None) -> list[dict]:
    t = TEXT[language]
    order = {"warm_up": 0, "sprint": 1, "after_glow": 2}
    rows = hold_outs.sort(pl.col("phase").replace_strict(order, default=3), "audience").to_dicts()
    return [
        row | {
            "phase_name": t["phase_" + row["phase"]],
            "audience_name": audience_name(row["audience"], language, audience_labels),
            "basis_text": t["basis_" + row["basis"]].format(n=row["comparable_lists"]),
            "tell": tell_sentence(row, t),
        }
        for row in rows
    ]  # fmt: skip


def plan_html(
    shop: str, currency: str, language: str, event: Event, comparable: Event | None, goals: pl.DataFrame,
    hold_outs: pl.DataFrame, pooled: float | None, no_band: str | None, band: tuple[float, float] | None,
    audience_labels: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """The plan's HTML; `pooled`: the uplift the event's lists together can detect (hold_outs.pooled_detectable);
    `band`: the quantiles its bands span (assets.campaigns.bands.band_of); `audience_labels`: the shop's own
    audiences' labels (settings: audiences)."""
    t = TEXT[language]
    shop_wide = {row["measure"]: row for row in goals.filter(pl.col("rfm_class").is_null()).iter_rows(named=True)}
    return render(
        "plan.html.j2", language, shop=shop, currency=currency, event=event, comparable=comparable,
        goals=[(m, shop_wide[m]) for m in SHOWN if m in shop_wide], band_title=band_title(band, t),
        lists=list_rows(hold_outs, language, audience_labels), advice=pooling_advice(hold_outs, pooled, t),
        no_band=t["no_band_reason"].format(reason=no_band) if no_band else None, figure=figure,
    )  # fmt: skip
