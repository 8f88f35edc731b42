"""A shop's own audiences (人群圈选, settings: audiences): their conditions as Polars expressions over one customer
table, and the daily lists they make. Plain Polars.

The customer table has a row per customer and a column per field a condition may name (pipelines.settings.
AUDIENCE_FIELDS): facts, RFM and lifecycle, P(alive) and churn risk by the latest purchase-model fit, targeting
tags, and the days since the last marketing contact. A customer without a value for a field (P(alive) before any
fit, say) meets none of its conditions.
"""

import json
from datetime import date

import polars as pl

from assets.customers.models import COUNT_MODELS
from assets.customers.value import model_inputs, risk_band
from pipelines.control import assign
from pipelines.settings import AUDIENCE_FIELDS, Audience, ValueSettings

COMPARE = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
    "in": lambda column, values: column.is_in(values),
    "not_in": lambda column, values: ~column.is_in(values),
}


def condition(field: str, operator: str, value) -> pl.Expr:
    """One condition (settings.Audience.conditions) as a Boolean expression, false where the field has no value."""
    column = pl.col(field)
    if operator in ("has", "has_not"):
        tags = [column.list.contains(tag) for tag in (value if isinstance(value, list) else [value])]
        meets = pl.all_horizontal(tags) if operator == "has" else ~pl.any_horizontal(tags)
    else:
        meets = COMPARE[operator](column, value)
    return meets.fill_null(False)


def audience_filter(audience: Audience) -> pl.Expr:
    """Whether a customer of the customer table is in the audience: every condition met."""
    return pl.all_horizontal([condition(*c) for c in audience.conditions()])


def p_alive(facts: pl.DataFrame, fit: dict | None) -> pl.Series:
    """P(alive) of each customer of `facts` by a core.model_fits row of a purchase model (null without one)."""
    if fit is None or facts.is_empty():
        return pl.Series("p_alive", [None] * facts.height, dtype=pl.Float64)
    customers, _, _ = model_inputs(facts, fit["unit"])
    alive = COUNT_MODELS[fit["model"]].p_alive(list(json.loads(fit["params"]).values()), customers)
    return pl.Series("p_alive", alive, dtype=pl.Float64)


def customer_table(
    facts: pl.DataFrame, rfm: pl.DataFrame, fit: dict | None, contacts: pl.DataFrame, day: date,
    value: ValueSettings,
) -> pl.DataFrame:  # fmt: skip
    """One row per customer of a snapshot (core.customer_facts, core.rfm) with every field of AUDIENCE_FIELDS, as
    of `day`: `fit` (a core.model_fits row, `latest_fit`) gives P(alive) and the risk band; `contacts`
    (customer_id, contact_date: marketing contacts on record) the days since the last one before `day`, or, for a
    customer never contacted, since their first order."""
    before = contacts.filter(pl.col("contact_date") < day)
    last_contact = before.group_by("customer_id").agg(last_contact=pl.col("contact_date").max())
    described = [c for c in rfm.columns if c not in facts.columns or c == "customer_id"]
    table = (
        facts.with_columns(p_alive(facts, fit))
        .with_columns(risk_band=pl.when(pl.col("p_alive").is_not_null()).then(risk_band(pl.col("p_alive"), value)))
        .join(rfm.select(described), on="customer_id", how="left")
        .join(last_contact, on="customer_id", how="left")
        .with_columns(
            days_since_contact=(
                pl.lit(day) - pl.col("last_contact").fill_null(pl.col("first_order_date"))
            ).dt.total_days(),
            tags=pl.concat_str(pl.col("tags"), pl.lit(";risk:") + pl.col("risk_band"), ignore_nulls=True).str.split(
                ";"
            ),
        )  # fmt: skip
    )
    return table.select("customer_id", *AUDIENCE_FIELDS)


def members(table: pl.DataFrame, audience: Audience) -> pl.Series:
    """The customer ids of an audience in the customer table."""
    return table.filter(audience_filter(audience))["customer_id"]


def audience_list_id(audience: pl.Expr, contact_date: pl.Expr) -> pl.Expr:
    """An audience's list of a day is one list (for its control group)."""
    return pl.concat_str([pl.lit("audience"), audience, contact_date.cast(pl.String)], separator="/")


def daily_lists(
    audiences: dict[str, Audience], table: pl.DataFrame, day: date, reachable, control
) -> pl.DataFrame:  # fmt: skip
    """The lists of the daily audiences for `day`: one row per customer (in the first audience of the settings
    that holds them) with `audience`, `contact_date` and `held_out` (the list's control group, `control`: the
    settings' outreach.control). `reachable(candidates)` drops opt-outs and anyone inside the frequency cap."""
    picked = [
        members(table, audience).to_frame("customer_id").with_columns(audience=pl.lit(name))
        for name, audience in audiences.items()
        if audience.daily
    ]
    schema = {"customer_id": pl.String, "audience": pl.String}
    candidates = pl.concat([pl.DataFrame(schema=schema), *picked])
    candidates = candidates.unique("customer_id", keep="first", maintain_order=True)
    chosen = reachable(candidates).with_columns(contact_date=pl.lit(day))
    return assign(chosen, audience_list_id(pl.col("audience"), pl.col("contact_date")), ["audience"], control)


AUDIENCE_LIST_SCHEMA = {
    "contact_date": pl.Date, "audience": pl.String, "customer_id": pl.String, "rfm_class": pl.String,
    "stage": pl.String, "channel": pl.String, "offer_kind": pl.String, "offer_discount": pl.Float64,
    "suggested_products": pl.String, "message": pl.String, "held_out": pl.Boolean,
}  # fmt: skip


def list_rows(offered: pl.DataFrame, table: pl.DataFrame, message) -> pl.DataFrame:
    """outreach.audience_lists rows from `daily_lists` with their offers (`assets.outreach.offers.with_offers`):
    each customer's class, stage and channel from the customer table, and `message(row)` for the contacted."""
    described = offered.join(
        table.select("customer_id", "rfm_class", "stage", "main_category", channel="first_channel"), on="customer_id"
    )
    messages = [None if row["held_out"] else message(row) for row in described.iter_rows(named=True)]
    return described.with_columns(message=pl.Series(messages, dtype=pl.String)).select(list(AUDIENCE_LIST_SCHEMA))
