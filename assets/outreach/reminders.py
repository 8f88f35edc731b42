"""Repurchase reminders: the customers who entered their `due` window on a day, less opt-outs
and anyone with another marketing contact inside the frequency cap. Plain Polars."""

from datetime import date

import polars as pl

from assets.customers.tiers import with_tier_on
from assets.customers.value import latest_fit, risk_bands
from pipelines.control import assign
from pipelines.settings import RISK_BANDS, Tier, ValueSettings
from reports.messages import category_name, render_message

CONTACT_SCHEMA = {"customer_id": pl.String, "contact_date": pl.Date, "yields": pl.Boolean}


def due_today(rfm: pl.DataFrame, day: date) -> pl.DataFrame:
    """Customers of a snapshot as of `day` whose due window opens that day."""
    return rfm.filter((pl.col("stage") == "due") & (pl.col("due_date") == day))


def in_risk_bands(
    facts: pl.DataFrame, rfm: pl.DataFrame, fits: pl.DataFrame | None, day: date, bands: list[str],
    settings: ValueSettings,
) -> pl.DataFrame:  # fmt: skip
    """`rfm` less the customers outside `bands` (a setting's churn-risk bands), by the latest purchase-model fit
    on or before `day` (core.model_fits rows); all of them when every band is allowed or there is no such fit."""
    fit = latest_fit(fits, day)
    if fit is None or set(bands) == set(RISK_BANDS):
        return rfm
    banded = risk_bands(facts, fit, settings)
    return rfm.join(banded.filter(pl.col("risk_band").is_in(bands)), on="customer_id", how="semi")


def reachable(
    candidates: pl.DataFrame, day: date, opted_out: pl.Expr, contacts: pl.DataFrame, cap_days: int
) -> pl.DataFrame:
    """Candidates less opt-outs and anyone with a contact less than `cap_days` before or after `day`, or on it.
    A contact marked `yields` (of a list this one takes priority over) counts only before `day`: it went out
    already, where one on or after `day` is withdrawn for this list's (see `assets.outreach.withdraw`)."""
    gap = (pl.col("contact_date") - pl.lit(day)).dt.total_days()
    near = contacts.filter((gap.abs() < cap_days) & ~(pl.col("yields") & (gap >= 0)))
    return candidates.filter(~opted_out & ~pl.col("customer_id").is_in(near["customer_id"].implode()))


def reminder_list_id(contact_date: pl.Expr) -> pl.Expr:
    """A day's reminders are one list (for its control group)."""
    return pl.lit("repurchase_reminders/") + contact_date.cast(pl.String)


def reminders_for_days(
    snapshot_on, days: list[date], opted_out: pl.Expr, contacts: pl.DataFrame, cap_days: int, shop: str, language: str,
    control, category_names: dict[str, str] | None = None, tiers: pl.DataFrame | None = None, ladder: list[Tier] = (),
) -> pl.DataFrame:  # fmt: skip
    """Reminders for each day in order, with the day's control group (`held_out`, no message; `control`: the
    settings' outreach.control); each day's list, held-out customers too, counts against the next days' cap.
    `category_names`: the shop's names of categories in messages (outreach.category_names); `tiers`
    (core.tier_history) and `ladder` (the settings' tiers): each message closes with the customer's tier that day.

    `snapshot_on(day)` returns (core.customer_facts, core.rfm) as of that day."""
    if "yields" not in contacts.columns:
        contacts = contacts.with_columns(yields=pl.lit(False))
    contacts = contacts.select(CONTACT_SCHEMA.keys()).cast(CONTACT_SCHEMA)
    lists = []
    for day in sorted(days):
        facts, rfm = snapshot_on(day)
        chosen = reachable(due_today(rfm, day), day, opted_out, contacts, cap_days).join(
            facts.select("customer_id", "main_category", "first_channel"), on="customer_id"
        )
        lists.append(chosen.with_columns(contact_date=pl.lit(day)))
        contacts = pl.concat([contacts, chosen.select("customer_id", contact_date=pl.lit(day), yields=pl.lit(False))])
    chosen = pl.concat(lists) if lists else pl.DataFrame()
    if chosen.is_empty():
        return pl.DataFrame(schema=REMINDER_SCHEMA)
    chosen = assign(chosen, reminder_list_id(pl.col("contact_date")), ["contact_date"], control)
    chosen, members = with_tier_on(chosen, tiers, "contact_date"), {tier.id: tier for tier in ladder}
    messages = [
        None if row["held_out"] else
        render_message("repurchase", language, row["rfm_class"], shop=shop,
                       category=category_name(row["main_category"], language, category_names or {}),
                       expected_next_date=row["expected_next_date"], member=members.get(row["tier"]))
        for row in chosen.iter_rows(named=True)
    ]  # fmt: skip
    return chosen.select(
        "contact_date", "customer_id", "rfm_class", "rfm_class_zh", "stage", "expected_next_date",
        channel="first_channel", language=pl.lit(language), reason=pl.lit("repurchase_due"),
        message=pl.Series(messages, dtype=pl.String), held_out="held_out",
    )  # fmt: skip


REMINDER_SCHEMA = {
    "contact_date": pl.Date, "customer_id": pl.String, "rfm_class": pl.String, "rfm_class_zh": pl.String,
    "stage": pl.String, "expected_next_date": pl.Date, "channel": pl.String, "language": pl.String,
    "reason": pl.String, "message": pl.String, "held_out": pl.Boolean,
}  # fmt: skip
