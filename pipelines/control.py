"""Control groups: which customers of a list are held out. Plain Polars, shared by the outreach lists and
the synthetic shop (which simulates their effect).

A customer is held out of a list by a hash of their id, the list and the shop's seed, so re-runs
give the same groups whatever their range (a campaign's lists of one phase share one draw: a customer is in
one audience of a phase). A list smaller than `min_list_size` holds out nobody;
the global control group (`global_share`, a hash of the id and the seed alone) is held out of
every list. The hash is BLAKE2b (`stable_hash`), not Polars' own (which a new Polars release may change), so that
groups stay the same across upgrades as well."""

import polars as pl

from pipelines.stable_hash import blake2b_64

BUCKETS = 10_000


def _bucket(*parts: pl.Expr) -> pl.Expr:
    return pl.concat_str(parts, separator="\x1f").map_batches(_buckets, return_dtype=pl.Int64)


def _buckets(keys: pl.Series) -> pl.Series:
    return (blake2b_64(keys) % BUCKETS).cast(pl.Int64)


def held_out(
    customer_id: pl.Expr, list_id: pl.Expr, control, big_enough: pl.Expr | bool = True, share: pl.Expr | None = None
) -> pl.Expr:
    """Whether a row's customer is held out of its list (`control`: the settings' outreach.control): in the
    global control group, or in the list's share (`share`, a list's own, else `control.share`) when the list is
    `big_enough`. A larger share holds out the same customers and more: the hash is the same, only the cut moves."""
    cut = round(control.share * BUCKETS) if share is None else (share * BUCKETS).round()
    in_list = _bucket(customer_id, list_id, pl.lit(str(control.seed))) < cut
    if not control.global_share:  # off by default: no second hash per row
        return in_list & big_enough
    return in_global_control(customer_id, control) | (in_list & big_enough)


def in_global_control(customer_id: pl.Expr, control) -> pl.Expr:
    """Whether a customer is in the global control group, held out of every list."""
    return _bucket(customer_id, pl.lit("global"), pl.lit(str(control.seed))) < round(control.global_share * BUCKETS)


def assign(frame: pl.DataFrame, draw: pl.Expr, lists: list[str], control, share: pl.Expr | None = None) -> pl.DataFrame:
    """`frame` (customer_id, one row per customer and list) with `held_out`, drawn by `draw` (the hashed list
    id) at each list's `share` (default `control.share`); a list (rows alike in `lists`) smaller than
    `control.min_list_size` holds out only the global control group."""
    big_enough = pl.len().over(lists) >= control.min_list_size
    return frame.with_columns(held_out=held_out(pl.col("customer_id"), draw, control, big_enough, share))
