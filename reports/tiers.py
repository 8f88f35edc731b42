"""Member tiers in the reports: the overview's tier mix month by month, and the review's migration between tiers
over an event (from core.tier_history, `assets.customers.tiers`). Tiers are named as the shop's settings name them."""

from datetime import date, timedelta

import polars as pl
import pygal

from assets.customers.tiers import tier_migration, tier_mix
from pipelines.calendar import Event
from pipelines.settings import Tier
from reports.render import chart

JOINED = "joined"  # the migration's row of customers who were no members at the event's start


def month_ends(first: date, last: date) -> list[date]:
    """The last day of each month from `first`'s to `last`'s, the last month's being `last`."""
    days, month = [], first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        days.append(min(following - timedelta(days=1), last))
        month = following
    return days


def tier_mix_section(history: pl.DataFrame | None, tiers: list[Tier], first: date, last: date, language: str):
    """The overview's section: members per tier at each month's end of first..last (a chart and a table, with each
    tier's benefit); None when the shop has no tiers."""
    if not tiers or history is None:
        return None
    days = month_ends(first, last)
    mix = tier_mix(history, days)
    counts = {(day, tier): n for day, tier, n in mix.rows()}
    names = [getattr(tier.name, language) for tier in tiers]
    series = {name: [counts.get((day, tier.id), 0) for day in days] for name, tier in zip(names, tiers, strict=True)}
    labels = [f"{day:%Y-%m}" for day in days]
    drawn = chart(pygal.StackedBar, labels, series, height=340, x_label_rotation=35)
    end = {tier.id: counts.get((days[-1], tier.id), 0) for tier in tiers}
    start = {tier.id: counts.get((days[0], tier.id), 0) for tier in tiers}
    total = sum(end.values()) or 1
    rows = [
        {"name": name, "start": start[tier.id], "end": end[tier.id], "share": end[tier.id] / total,
         "benefit": getattr(tier.benefit, language) if tier.benefit else ""}
        for name, tier in zip(names, tiers, strict=True)
    ]  # fmt: skip
    return {"chart": drawn, "rows": rows, "first": days[0], "last": days[-1]}


def tier_migration_section(history: pl.DataFrame | None, tiers: list[Tier], event: Event, language: str):
    """The review's section: customers by tier at the event's start (rows; `JOINED`: no member yet) and at the
    after-glow's end (columns), the counts adding up to the members at the end; None when the shop has no tiers."""
    if not tiers or history is None:
        return None
    moves = tier_migration(history, event.start, event.end).with_columns(pl.col("from").fill_null(JOINED))
    cells = {(a, b): n for a, b, n in moves.rows()}
    ids = [tier.id for tier in tiers]
    starts = [i for i in [*ids, JOINED] if any(key[0] == i for key in cells)]
    return {
        "starts": starts,
        "row_totals": {s: sum(n for (a, _), n in cells.items() if a == s) for s in starts},
        "ends": [i for i in ids if any(key[1] == i for key in cells)],
        "cells": cells,
        "names": {tier.id: getattr(tier.name, language) for tier in tiers},
        "total": int(moves["customers"].sum()),
        "start": event.start,
        "end": event.end,
    }
