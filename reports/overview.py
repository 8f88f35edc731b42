"""The shop overview: a period against the previous one (reports.trends), class sizes and revenue shares,
lifecycle stages, order-value tiers, the top-20% share, cycles by category, product roles, the rule and the
model on the hold-out, how many customers are due for a reminder each day of the coming week (the list
itself goes to the outbox), and whether the last 90 days' reminders worked."""

from datetime import date, timedelta

import polars as pl

from assets.customers.analysis import top_customers
from assets.customers.lifecycle import STAGES
from reports.outreach import audience_lines, reminder_lines, uplift_chart
from reports.render import bar_chart, figure, render
from reports.translations import CHANNEL_NAMES, CLASS_NAMES, TEXT
from reports.trends import change

ROLES_SHOWN = 5  # the top of each role


def due_next_week(facts: pl.DataFrame, rfm: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """New and active customers whose due window opens in the 7 days after `as_of`: one row per customer with
    class, stage, due date and the channel of their first order."""
    return (
        rfm.filter(pl.col("due_date").is_between(as_of + timedelta(days=1), as_of + timedelta(days=7))
                   & pl.col("stage").is_in(["new", "active"]))
        .join(facts.select("customer_id", channel="first_channel"), on="customer_id")
        .select("customer_id", "rfm_class", "stage", "due_date", "channel")
        .sort("due_date", "customer_id")
    )  # fmt: skip


def overview_html(
    shop: str, currency: str, language: str, as_of: date, facts: pl.DataFrame, rfm: pl.DataFrame,
    class_mix: pl.DataFrame, value_tiers: pl.DataFrame, category_cycles: pl.DataFrame, due: pl.DataFrame,
    due_file: dict, trends: dict, roles: pl.DataFrame, reminded: pl.DataFrame, response_days: int, prediction: dict,
    unnamed_statuses: pl.DataFrame | None = None, member_tiers: dict | None = None,
    own_lists: pl.DataFrame | None = None, audience_labels: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """`due_file`: the due list as `reports.render.attachment` links it; `reminded`: reminders' results
    (assets.outreach.uplift.reminder_results) of the days to show; `unnamed_statuses`: statuses no setting names
    (status, treated, first_loaded_ts), said in a note above the figures they are counted in; `member_tiers`: the
    tier mix (reports.tiers.tier_mix_section), None without tiers; `own_lists`: the shop's own audience lists'
    results (assets.outreach.uplift.audience_results), None for a shop without any."""
    label = pl.col("rfm_class").replace_strict(CLASS_NAMES[language])
    classes = class_mix.with_columns(label=label)
    stages = (
        rfm.group_by("stage").len("customers")
        .with_columns(share=pl.col("customers") / pl.col("customers").sum(),
                      order=pl.col("stage").replace_strict({s: i for i, s in enumerate(STAGES)}, return_dtype=pl.Int8))
        .sort("order")
    )  # fmt: skip
    due_classes = [c for c in CLASS_NAMES[language] if c in set(due["rfm_class"])]
    due_days = (
        due.group_by("due_date", "rfm_class").len("customers")
        .pivot(on="rfm_class", index="due_date", values="customers")
        .fill_null(0)
        .with_columns(total=pl.sum_horizontal(pl.exclude("due_date")))
        .sort("due_date")
    ) if due.height else pl.DataFrame()  # fmt: skip
    channels = CHANNEL_NAMES[language]
    due_channels = [
        (TEXT[language]["unknown"] if channel is None else channels.get(channel, channel), customers)
        for channel, customers in due.group_by("channel").len().sort("len", "channel", descending=[True, False]).rows()
    ]
    revenue = float(facts["net_revenue"].sum() or 0)
    summary = {
        "customers": facts.height,
        "revenue": revenue,
        "repeat_rate": float((facts["purchase_days"] >= 2).mean() or 0),
        "top_share": top_customers(facts)["revenue_share"][0] or 0.0,
    }
    chart = bar_chart(
        "", classes["label"].to_list(),
        {TEXT[language]["customer_share"]: classes["customer_share"].to_list(),
         TEXT[language]["revenue_share"]: classes["revenue_share"].to_list()},
        percent=True,
    )  # fmt: skip
    t = TEXT[language]
    lines = reminder_lines(reminded, language)
    outreach = {"title": t["reminders_title"], "intro": t["reminders_intro"].format(days=response_days),
                "lines": lines, "chart": uplift_chart(lines, language)}  # fmt: skip
    audiences = None
    if own_lists is not None:
        own = audience_lines(own_lists, language, audience_labels or {})
        audiences = {"title": t["audiences_title"], "intro": t["audiences_intro"].format(days=response_days),
                     "lines": own, "chart": uplift_chart(own, language)}  # fmt: skip
    return render(
        "overview.html.j2", language, outreach=outreach, audiences=audiences, shop=shop, currency=currency,
        as_of=as_of, summary=summary,
        classes=classes.to_dicts(), class_chart=chart, stages=stages.to_dicts(), tiers=value_tiers.to_dicts(),
        cycles=category_cycles.to_dicts(), due_days=due_days.to_dicts(), due_classes=due_classes,
        due_total=due.height, due_channels=due_channels, due_file=due_file, class_names=CLASS_NAMES[language],
        trends=trends, prediction=prediction, member_tiers=member_tiers,
        unnamed_statuses=[] if unnamed_statuses is None else unnamed_statuses.to_dicts(),
        figure=figure, change=change, roles=roles.filter(pl.int_range(pl.len()).over("role") < ROLES_SHOWN).to_dicts(),
    )  # fmt: skip
