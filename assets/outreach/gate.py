"""The one gate for everything that leaves the warehouse for a person or a sending tool: no customer who opted
out (in any spelling of their id), nobody of the global control group, nobody with another marketing contact
inside the frequency cap. Plain Polars; `assets.outreach.outbox.write_list`, the only writer of outbox files,
passes every row through `gate`."""

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from pipelines.control import in_global_control
from pipelines.settings import ZERO_WIDTH, ControlSettings, CustomerIds, ShopSettings

# marketing contacts (not care)
CONTACT_TABLES = ("outreach.repurchase_reminders", "outreach.campaign_targets", "outreach.audience_lists")


def loose_id(ids: pl.Expr) -> pl.Expr:
    """A customer id as consent matches it: full-width letters and digits as plain ones (NFKC), without
    zero-width characters or surrounding whitespace, in lower case."""
    return ids.str.normalize("NFKC").str.replace_all(ZERO_WIDTH, "").str.strip_chars().str.to_lowercase()


@dataclass(frozen=True)
class OptOuts:
    customers: frozenset[str]  # customer ids as stored
    unmatched: tuple[str, ...]  # opt-out lines, as written, that name no customer on record


def match_opt_outs(lines: list[str], customers: pl.Series, ids: CustomerIds) -> OptOuts:
    """Each opt-out line against the customers on record: the customer it names exactly (read as the source's
    ids are), else every customer it names ignoring case, width and surrounding whitespace. So consent never
    depends on `customer_ids.case_sensitive`, which only says whether `AB12` and `ab12` are two customers."""
    written = pl.DataFrame({"line": lines}, schema={"line": pl.String}).with_columns(
        exact=ids.normalize(pl.col("line")), loose=loose_id(pl.col("line"))
    )
    known = customers.unique().to_frame("customer_id").with_columns(loose=loose_id(pl.col("customer_id")))
    exactly = written.join(known, left_on="exact", right_on="customer_id").select("line", customer_id="exact")
    loosely = written.join(exactly, on="line", how="anti").join(known, on="loose").select("line", "customer_id")
    matched = set(exactly["line"]) | set(loosely["line"])
    unmatched = dict.fromkeys(line for line in lines if line not in matched)  # in file order, once
    return OptOuts(frozenset(exactly["customer_id"]) | frozenset(loosely["customer_id"]), tuple(unmatched))


def opt_outs_on_record(conn, settings: ShopSettings) -> OptOuts:
    """The settings' opt-outs matched against every customer in staging.orders."""
    lines = settings.outreach.opt_out_ids()
    if not lines:  # no need to read every customer id
        return OptOuts(frozenset(), ())
    customers = conn.sql("SELECT DISTINCT customer_id FROM staging.orders").pl()["customer_id"]
    return match_opt_outs(lines, customers, settings.customer_ids)


@dataclass(frozen=True)
class GateRules:
    opt_outs: OptOuts
    control: ControlSettings
    cap_days: int
    contacts: pl.DataFrame  # customer_id, contact_date: marketing contacts on record, held-out customers too


def rules_on_record(conn, settings: ShopSettings, days: pl.Series, opt_outs: OptOuts | None = None) -> GateRules:
    """The gate's rules for a list of contact days `days`: the settings', and the contacts on record that could
    fall inside the frequency cap of one of those days; `opt_outs`: the opt-outs on record, if the caller has
    them already."""
    cap = settings.outreach.frequency_cap_days
    first, last = days.min(), days.max()
    window = [first - timedelta(days=cap), last + timedelta(days=cap)] if first else [None, None]
    contacts = conn.sql(
        " UNION ALL ".join(f"SELECT customer_id, contact_date FROM {name} WHERE contact_date BETWEEN ? AND ?"
                           for name in CONTACT_TABLES),
        params=window * len(CONTACT_TABLES),
    ).pl()  # fmt: skip
    if opt_outs is None:
        opt_outs = opt_outs_on_record(conn, settings)
    return GateRules(opt_outs, settings.outreach.control, cap, contacts)


def refusals(rows: pl.DataFrame, rules: GateRules, day: str) -> pl.DataFrame:
    """`rows` (a `customer_id` and `day`, the column of the day each would be contacted) with `refused`: why the
    gate keeps the row back (`opted_out`; `global_control`; `frequency_cap`: the customer has another marketing
    contact on record on another day less than the cap's days away), or null."""
    gap = (pl.col("contact_date") - pl.col(day)).dt.total_days().abs()
    capped = (
        rows.select("customer_id", day).unique().join(rules.contacts, on="customer_id")
        .filter(gap.is_between(1, rules.cap_days - 1)).select("customer_id", day).unique()
        .with_columns(_capped=pl.lit(True))
    )  # fmt: skip
    customer = pl.col("customer_id")
    global_control = in_global_control(customer, rules.control) if rules.control.global_share else pl.lit(False)
    refused = (
        pl.when(customer.is_in(list(rules.opt_outs.customers))).then(pl.lit("opted_out"))
        .when(global_control).then(pl.lit("global_control"))
        .when(pl.col("_capped").fill_null(False)).then(pl.lit("frequency_cap"))
    )  # fmt: skip
    joined = rows.join(capped, on=["customer_id", day], how="left", maintain_order="left")
    return joined.with_columns(refused=refused).drop("_capped")


def gate(rows: pl.DataFrame, rules: GateRules, day: str) -> pl.DataFrame:
    """The rows the gate lets out (see `refusals`)."""
    return refusals(rows, rules, day).filter(pl.col("refused").is_null()).drop("refused")
