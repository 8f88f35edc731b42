"""The shop overview: class sizes and revenue shares, lifecycle stages, order-value tiers,
the top-20% share, cycles by category, the reminders due this week, and whether the last 90 days' reminders
worked."""

from datetime import date, timedelta

import polars as pl

from assets.customers.analysis import top_customers
from assets.customers.lifecycle import STAGES
from reports.outreach import reminder_lines, uplift_chart
from reports.render import bar_chart, render
from reports.translations import CLASS_NAMES, TEXT

DUE_ROWS_SHOWN = 50


def overview_html(
    shop: str, currency: str, language: str, as_of: date, facts: pl.DataFrame, rfm: pl.DataFrame,
    class_mix: pl.DataFrame, value_tiers: pl.DataFrame, category_cycles: pl.DataFrame,
    reminded: pl.DataFrame, response_days: int, prediction: dict,
) -> str:  # fmt: skip
    """`reminded`: reminders' results (assets.outreach.uplift.reminder_results) of the days to show."""
    label = pl.col("rfm_class").replace_strict(CLASS_NAMES[language])
    classes = class_mix.with_columns(label=label)
    stages = (
        rfm.group_by("stage").len("customers")
        .with_columns(share=pl.col("customers") / pl.col("customers").sum(),
                      order=pl.col("stage").replace_strict({s: i for i, s in enumerate(STAGES)}, return_dtype=pl.Int8))
        .sort("order")
    )  # fmt: skip
    due = (
        rfm.filter(pl.col("due_date").is_between(as_of + timedelta(days=1), as_of + timedelta(days=7))
                   & pl.col("stage").is_in(["new", "active"]))
        .join(facts.select("customer_id", channel="first_channel"), on="customer_id")
        .with_columns(label=label)
        .sort("due_date", "customer_id")
    )  # fmt: skip
    revenue = float(facts["net_revenue"].sum() or 0)
    summary = {
        "customers": facts.height,
        "revenue": revenue,
        "repeat_rate": float((facts["purchase_days"] >= 2).mean() or 0),
        "top_share": top_customers(facts)["revenue_share"][0] or 0.0,
    }
    chart = bar_chart(
        "", classes["label"].to_list(),
        {"customers" if language == "en" else "客户占比": classes["customer_share"].to_list(),
         "revenue" if language == "en" else "销售额占比": classes["revenue_share"].to_list()},
        percent=True,
    )  # fmt: skip
    t = TEXT[language]
    lines = reminder_lines(reminded, language)
    outreach = {"title": t["reminders_title"], "intro": t["reminders_intro"].format(days=response_days),
                "lines": lines, "chart": uplift_chart(lines, language)}  # fmt: skip
    return render(
        "overview.html.j2", language, outreach=outreach, shop=shop, currency=currency, as_of=as_of, summary=summary,
        classes=classes.to_dicts(), class_chart=chart, stages=stages.to_dicts(), tiers=value_tiers.to_dicts(),
        cycles=category_cycles.to_dicts(), due=due.head(DUE_ROWS_SHOWN).to_dicts(),
        due_more=max(due.height - DUE_ROWS_SHOWN, 0), prediction=prediction,
    )  # fmt: skip
