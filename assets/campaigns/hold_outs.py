"""Hold-outs sized to tell: before a campaign list goes out, the control group it needs to detect the uplift that
comparable past lists showed, at 80% power, and the share of the list held out to get it. Plain Polars and SciPy.

The size is that of a two-sided test of two proportions at 5% with unequal groups (control n, contacted r x n),
Fleiss, Levin & Paik, "Statistical Methods for Rates and Proportions" (3rd ed., 2003), section 4.4, with the
continuity correction of Fleiss, Tytun & Ury (1980), which brings the normal approximation close to Fisher's
exact test, the test the review judges a list by (`assets.outreach.uplift`):

    n' = [z(1-a/2) sqrt((r+1) p q) + z(1-b) sqrt(r p0 q0 + p1 q1)]^2 / (r d^2),  p = (p0 + r p1) / (r + 1)
    n  = n'/4 [1 + sqrt(1 + 2 (r+1) / (n' r d))]^2

with p0 the held-out customers' response rate, p1 = p0 + d the contacted ones', q = 1 - p. Worked by hand for
p0 = 10%, d = 5 points, r = 1: p = 0.125, n' = (1.95996 x 0.46771 + 0.84162 x 0.46637)^2 / 0.0025 = 685.6 and
n = 685.6/4 x (1 + sqrt(1 + 4/34.28))^2 = 725.0: 726 held out against 726 contacted.

A list's share is the smallest (in steps of 0.1%) whose held-out customers reach that size, within the shop's
bounds (outreach.control.min_share, max_share); a list that cannot tell at any share up to half holds out the
most the bounds allow, which still adds to its phase's and the event's pooled figures. The comparable lists are
the earlier events' lists of the same phase and audience, else of the same audience, else all of them, pooled;
without one that showed an uplift, the list holds out outreach.control.share."""

from datetime import date

import polars as pl
from scipy import special

from assets.outreach.uplift import responses

ALPHA, POWER = 0.05, 0.80
Z_ALPHA, Z_POWER = special.ndtri(1 - ALPHA / 2), special.ndtri(POWER)
SHARE_STEP = 0.001
HOLD_OUT_SCHEMA = {
    "event_id": pl.String, "phase": pl.String, "audience": pl.String, "customers": pl.Int64,
    "basis": pl.String, "comparable_lists": pl.Int64, "response_held_out": pl.Float64, "expected_uplift": pl.Float64,
    "needed_share": pl.Float64, "control_share": pl.Float64, "detectable_uplift": pl.Float64, "can_tell": pl.Boolean,
}  # fmt: skip
BASES = (("phase", "audience"), ("audience",), ())  # comparable past lists, the closest first


def control_size(p0: float, uplift: float, ratio: float) -> float:
    """Held-out customers needed to detect `uplift` over the rate `p0` at 80% power (5%, two-sided), with `ratio`
    contacted customers for each held-out one (the module's formula)."""
    p1 = p0 + uplift
    pooled = (p0 + ratio * p1) / (ratio + 1)
    spread = (
        Z_ALPHA * ((ratio + 1) * pooled * (1 - pooled)) ** 0.5
        + Z_POWER * (ratio * p0 * (1 - p0) + p1 * (1 - p1)) ** 0.5
    )
    uncorrected = spread**2 / (ratio * uplift**2)
    return uncorrected / 4 * (1 + (1 + 2 * (ratio + 1) / (uncorrected * ratio * abs(uplift))) ** 0.5) ** 2


def needed_share(customers: int, p0: float, uplift: float) -> float | None:
    """The smallest share (in steps of SHARE_STEP, up to half) of a list of `customers` whose held-out customers
    detect `uplift` over `p0`; None when no share does. The hash draws each customer apart, so a share s holds
    out Binomial(customers, s) of them: the share is one whose group reaches the size in 97.5% of draws."""
    for step in range(1, round(0.5 / SHARE_STEP) + 1):
        share = round(step * SHARE_STEP, 3)
        fewest = share * customers - Z_ALPHA * (customers * share * (1 - share)) ** 0.5
        if fewest >= control_size(p0, uplift, (1 - share) / share):
            return share
    return None


def detectable_uplift(p0: float, contacted: float, held_out: float) -> float | None:
    """The smallest uplift over `p0` that `contacted` against `held_out` customers detect at 80% power (by
    bisection on the size); None when not even all the way to a rate of 100%."""
    if held_out < 1 or contacted < 1 or p0 >= 1:
        return None
    ratio = contacted / held_out
    low, high = 0.0, 1 - p0
    if control_size(p0, high, ratio) > held_out:
        return None
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (low, middle) if control_size(p0, middle, ratio) <= held_out else (middle, high)
    return high


def comparable(past: pl.DataFrame, phase: str, audience: str) -> tuple[str, pl.DataFrame]:
    """The closest comparable lists among `past` (one row per earlier list: phase, audience, contacted, held_out,
    buyers_contacted, buyers_held_out) that hold someone out, and what they have in common."""
    wanted = {"phase": phase, "audience": audience}
    for basis in BASES:
        rows = past.filter(pl.col("held_out") > 0, *(pl.col(c) == wanted[c] for c in basis))
        if rows.height:
            return "+".join(basis) or "all", rows
    return "none", past.clear()


def size_hold_outs(lists: pl.DataFrame, past: pl.DataFrame, control) -> pl.DataFrame:
    """One row per list of `lists` (event_id, phase, audience, customers): the comparable lists' pooled held-out
    rate and uplift, the share they need, the share held out (`control`: outreach.control) and the uplift that
    share will be able to detect (HOLD_OUT_SCHEMA)."""
    rows = []
    for event_id, phase, audience, customers in lists.select("event_id", "phase", "audience", "customers").rows():
        basis, rows_then = comparable(past, phase, audience)
        p0 = uplift = needed = None
        if rows_then.height:
            sums = rows_then.select(pl.col("contacted", "held_out", "buyers_contacted", "buyers_held_out").sum())
            contacted, held, bought, bought_held = sums.row(0)
            p0 = bought_held / held
            uplift = bought / contacted - p0 if contacted else None
        if uplift is not None and uplift > 0:
            needed = needed_share(customers, p0, uplift)
        share = held_out_share(uplift, needed, control)
        big_enough = customers >= control.min_list_size
        held_out = share * customers if big_enough else 0
        detectable = detectable_uplift(p0, customers - held_out, held_out) if p0 is not None else None
        rows.append({
            "event_id": event_id, "phase": phase, "audience": audience, "customers": customers, "basis": basis,
            "comparable_lists": rows_then.height, "response_held_out": p0, "expected_uplift": uplift,
            "needed_share": needed, "control_share": share if big_enough else 0.0, "detectable_uplift": detectable,
            "can_tell": detectable is not None and uplift is not None and detectable <= uplift,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=HOLD_OUT_SCHEMA)


def held_out_share(uplift: float | None, needed: float | None, control) -> float:
    """The share a list holds out: without bounds, or when its comparable lists showed no uplift to size for,
    `control.share` (within the bounds); else the share it needs within them, the most they allow when no
    share tells."""
    if control.min_share is None:
        return control.share
    if uplift is None or uplift <= 0:
        return min(max(control.share, control.min_share), control.max_share)
    return min(max(needed or control.max_share, control.min_share), control.max_share)


def pooled_detectable(hold_outs: pl.DataFrame) -> float | None:
    """The uplift all of an event's sized lists together will be able to detect, over their comparable lists'
    held-out rate weighted by customers: what pooling them (or one global hold-out) could tell."""
    known = hold_outs.filter(pl.col("response_held_out").is_not_null() & (pl.col("control_share") > 0))
    if known.is_empty():
        return None
    held = (known["customers"] * known["control_share"]).sum()
    p0 = (known["customers"] * known["response_held_out"]).sum() / known["customers"].sum()
    return detectable_uplift(p0, known["customers"].sum() - held, held)


def earlier_lists(targets: pl.DataFrame | None, orders: pl.DataFrame, response_days: int, before: date) -> pl.DataFrame:
    """Each campaign list of `targets` (outreach.campaign_targets) whose response window closed before `before`,
    with its members' outcomes (assets.outreach.uplift.responses): what a plan made on that day could know."""
    if targets is None:
        return pl.DataFrame()
    closed = targets.filter(pl.col("contact_date") + pl.duration(days=response_days) <= before)
    return responses(closed.with_columns(pl.col("held_out").fill_null(False)), orders, response_days, before)


def list_counts(outcomes: pl.DataFrame) -> pl.DataFrame:
    """One row per list of `earlier_lists`: event, phase, audience, contacted and held out, and the buyers of
    each."""
    if outcomes.is_empty():
        return pl.DataFrame(schema={"event_id": pl.String, "phase": pl.String, "audience": pl.String,
                                    **dict.fromkeys(["contacted", "held_out", "buyers_contacted",
                                                     "buyers_held_out"], pl.Int64)})  # fmt: skip
    contacted, bought = ~pl.col("held_out"), pl.col("bought")
    return outcomes.group_by("event_id", "phase", "audience", maintain_order=True).agg(
        contacted=contacted.sum().cast(pl.Int64), held_out=pl.col("held_out").sum().cast(pl.Int64),
        buyers_contacted=(bought & contacted).sum().cast(pl.Int64),
        buyers_held_out=(bought & pl.col("held_out")).sum().cast(pl.Int64),
    )  # fmt: skip
