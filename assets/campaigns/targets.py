"""Who to talk to in each phase of an event. Plain Polars.

The plan (settings: events.plan) names, per phase, the audiences to reach: an RFM class at
the event's baseline, or `engaged` (reached in the warm-up, or bought in it), `missed`
(reached before the sprint, bought nothing in it) and `new_buyers` (first purchase ever in
the sprint). Each phase's list is made for its first day, from what is known by then.
"""

from datetime import date, timedelta

import polars as pl

from pipelines.calendar import Event
from pipelines.control import assign
from pipelines.warehouse import COMPLETED

TARGET_SCHEMA = {
    "event_id": pl.String, "phase": pl.String, "contact_date": pl.Date, "customer_id": pl.String, "audience": pl.String,
}  # fmt: skip


def buyers(orders: pl.DataFrame, first: date, last: date) -> pl.Series:
    """Customers with a purchase in first..last."""
    window = orders.filter((pl.col("status") == COMPLETED) & pl.col("order_date").is_between(first, last))
    return window["customer_id"].unique()


def audience(name: str, event: Event, baseline: pl.DataFrame, orders: pl.DataFrame, earlier: pl.DataFrame) -> pl.Series:
    """Customer ids of an audience; `earlier` holds this event's lists of earlier phases."""
    if name == "engaged":
        reached = earlier.filter(pl.col("phase") == "warm_up")["customer_id"]
        return pl.concat([reached, buyers(orders, *event.phases["warm_up"])]).unique()
    if name == "missed":
        reached = earlier.filter(pl.col("phase").is_in(["warm_up", "sprint"]))["customer_id"].unique()
        return reached.filter(~reached.is_in(buyers(orders, *event.sprint).implode()))
    if name == "new_buyers":
        sprint_buyers = buyers(orders, *event.sprint)
        before = orders.filter((pl.col("status") == COMPLETED) & (pl.col("order_date") < event.sprint[0]))
        return sprint_buyers.filter(~sprint_buyers.is_in(before["customer_id"].implode()))
    return baseline.filter(pl.col("rfm_class") == name)["customer_id"]


def campaign_draw(event_id: pl.Expr, phase: pl.Expr) -> pl.Expr:
    """What a campaign list's control group is drawn by: its event and phase (a customer is in one audience of
    a phase)."""
    return pl.concat_str([event_id, phase], separator="/")


def campaign_targets(
    event: Event, plan: dict[str, list[str]], baseline: pl.DataFrame, facts: pl.DataFrame, orders: pl.DataFrame,
    known_until: date, reachable, render, control, own_audiences: dict | None = None, shares=None,
) -> pl.DataFrame:  # fmt: skip
    """The lists of each phase with a plan, for its first day, as far as the orders are known, each with its
    control group (`held_out`, no message; `control`: the settings' outreach.control). Held-out customers count
    as reached for later phases' audiences and the frequency cap, as contacted ones do, so that both groups
    are treated alike but for the message.

    `reachable(candidates, day, earlier)` drops opt-outs and anyone inside the frequency cap;
    `render(audience, row)` writes the message; `own_audiences`: the shop's own audiences (settings: audiences),
    name -> `members(day, earlier)`, their customer ids on a phase's day; `shares(phase, sizes)`, given the
    customers of each of a phase's lists (audience, customers), says the share each holds out (audience,
    control_share; default: all `control.share`)."""
    lists = pl.DataFrame(schema=TARGET_SCHEMA | {"held_out": pl.Boolean})
    for phase in ("warm_up", "sprint", "after_glow"):
        day = event.phases[phase][0]
        if not plan.get(phase) or day > known_until + timedelta(days=1):
            continue
        before = orders.filter(pl.col("order_date") < day)
        own = own_audiences or {}
        picked = [
            (own[name](day, lists) if name in own else audience(name, event, baseline, before, lists))
            .to_frame("customer_id").with_columns(audience=pl.lit(name))
            for name in plan[phase]
        ]  # fmt: skip
        candidates = pl.concat(picked).unique("customer_id", keep="first", maintain_order=True)
        chosen = reachable(candidates, day, lists).with_columns(
            event_id=pl.lit(event.id), phase=pl.lit(phase), contact_date=pl.lit(day)
        )
        share = None
        if shares is not None:
            sizes = chosen.group_by("audience", maintain_order=True).agg(customers=pl.len())
            chosen = chosen.join(shares(phase, sizes), on="audience", how="left", maintain_order="left")
            share = pl.col("control_share")
        chosen = assign(chosen, campaign_draw(pl.col("event_id"), pl.col("phase")), ["audience"], control, share)
        lists = pl.concat([lists, chosen.select(*TARGET_SCHEMA.keys(), "held_out")], how="vertical_relaxed")
    described = lists.join(baseline.select("customer_id", "rfm_class"), on="customer_id", how="left").join(
        facts.select("customer_id", "main_category", "first_channel"), on="customer_id", how="left"
    )
    messages = [None if row["held_out"] else render(f"{row['phase']}_{row['audience']}", row)
                for row in described.iter_rows(named=True)]  # fmt: skip
    return described.select(
        *TARGET_SCHEMA.keys(), "rfm_class", channel="first_channel", message=pl.Series(messages, dtype=pl.String),
        held_out="held_out",
    )  # fmt: skip
