"""The fits on customers grouped into distinct tuples (and merged from buckets) against the fits of every customer
one by one, on simulated facts and on Online Retail II."""

import hashlib
import json
from datetime import date

import duckdb
import numpy as np
import polars as pl
import pytest

from assets.customers.models import COUNT_MODELS, Fit, fit_gammagamma, independence, simulate_bgnbd, simulate_spend
from assets.customers.value import (
    Fits,
    customer_value,
    fit,
    fit_grouped,
    fit_on,
    fit_statistics,
    merge_fit_statistics,
    model_inputs,
)
from pipelines.settings import ValueSettings
from tests.conftest import ONLINE_RETAIL


def simulated_facts(customers: int, seed: int = 7) -> pl.DataFrame:
    """core.customer_facts' columns the fits read: BG/NBD purchase days over up to two years, revenue in cents."""
    rng = np.random.default_rng(seed)
    drawn = simulate_bgnbd((0.25, 25.0, 0.8, 2.5), rng.integers(0, 730, customers).astype(float), rng)
    t_x = np.minimum(np.ceil(drawn.t_x), drawn.T)
    purchase_days = drawn.x + 1
    return pl.DataFrame({
        "customer_id": [f"C{n:07d}" for n in range(customers)], "as_of_date": date(2025, 12, 31),
        "purchase_days": purchase_days.astype(np.int64), "tenure_days": drawn.T.astype(np.int64),
        "recency_days": (drawn.T - t_x).astype(np.int64),
        "net_revenue": np.round(simulate_spend((3.0, 3.5, 160.0), purchase_days, rng) * purchase_days, 2),
    })  # fmt: skip


def fit_one_by_one(facts: pl.DataFrame, settings: ValueSettings) -> Fits:
    """The fits with every customer's own likelihood term summed (weight 1 per row, nothing grouped)."""
    customers, purchases, spend = model_inputs(facts, settings.unit)
    repeat_spend = np.where(purchases > 1, spend, np.nan)
    return Fits(
        COUNT_MODELS[settings.model].fit(customers, np.ones(facts.height)),
        fit_gammagamma(purchases, repeat_spend, settings.min_repeat_buyers),
        independence(purchases, repeat_spend),
    )


def assert_same_fit(grouped: Fit, one_by_one: Fit) -> None:
    """Parameters within 0.01 of a standard error of each other, and the same maximum. Why 0.01: both fits
    maximize the same likelihood summed in another order, and L-BFGS-B stops near, not at, the maximum (ftol =
    1e-13 of |log-likelihood|, gradients by finite differences: `models._fit`); near the maximum the
    log-likelihood falls by z^2 / 2 at z standard errors, so the stop's z grows as sqrt(|LL|). Measured on
    these samples (|LL| up to 1.8e5): 1.1e-4 to 8.3e-4 standard errors apart; 0.01 is ten times that, and far
    below any difference a reader of the fits could see (a 95% interval is 3.9 standard errors wide)."""
    assert grouped.customers == one_by_one.customers and grouped.converged and one_by_one.converged
    assert grouped.log_likelihood == pytest.approx(one_by_one.log_likelihood, rel=1e-10)
    for name, value in grouped.params.items():
        assert abs(value - one_by_one.params[name]) <= 0.01 * grouped.std_errors[name], name


@pytest.mark.parametrize("model", ["bgnbd", "paretonbd"])
def test_the_grouped_fit_equals_the_fit_of_every_customer_on_simulated_facts(model):
    facts = simulated_facts(20_000)
    settings = ValueSettings(model=model)
    statistics = fit_statistics(facts)
    # fewer rows than customers, or the test would not test grouping
    assert statistics.purchases.height < facts.height / 2 and statistics.purchases["customers"].sum() == facts.height
    grouped, one_by_one = fit_grouped(statistics, settings), fit_one_by_one(facts, settings)
    assert_same_fit(grouped.purchases, one_by_one.purchases)
    assert_same_fit(grouped.spend, one_by_one.spend)
    assert grouped.frequency_spend_correlation == pytest.approx(one_by_one.frequency_spend_correlation, rel=1e-12)
    # predictions are per customer from the parameters: parameters 1e-5 apart move them by about as much
    by_groups, by_customers = (customer_value(facts, fits, settings) for fits in (grouped, one_by_one))
    for column in ("p_alive", "expected_purchases_365d", "expected_spend_per_purchase", "predicted_value_12m"):
        assert by_groups[column].to_numpy() == pytest.approx(by_customers[column].to_numpy(), rel=1e-4), column


def bucket(customer_id: str, buckets: int = 8) -> int:
    """A stable bucket of a customer id: the first 8 bytes of its BLAKE2b digest, modulo the buckets."""
    return int.from_bytes(hashlib.blake2b(customer_id.encode(), digest_size=8).digest(), "big") % buckets


def test_statistics_merged_from_buckets_are_those_of_one_group_and_fit_the_same():
    facts = simulated_facts(20_000).sample(fraction=1.0, shuffle=True, seed=3)  # row order must not matter
    facts = facts.with_columns(bucket=pl.col("customer_id").map_elements(bucket, return_dtype=pl.Int64))
    parts = [fit_statistics(part) for _, part in facts.group_by("bucket")]
    assert len(parts) == 8 and all(part.purchases["customers"].sum() > 2000 for part in parts)
    merged, whole = merge_fit_statistics(parts), fit_statistics(facts)
    assert merged.purchases.equals(whole.purchases) and merged.spend.equals(whole.spend)
    # the same rows in the same order: the same fit to the last bit, not merely within the tolerance
    for model in ("bgnbd", "paretonbd"):
        settings = ValueSettings(model=model)
        fits = fit_grouped(merged, settings)
        assert fits == fit(facts.sort("customer_id"), settings)
        # and the fit a shop's first run tags by (`fit_on`) is the one the value step records
        assert json.loads(fit_on(facts, settings)["params"]) == fits.purchases.params


def test_merging_sums_the_counts_of_each_tuple_by_hand():
    # (purchase days, tenure, recency, net revenue): a and b share their purchase tuple and their spend tuple
    # (2 purchase days, 12.5 each); c bought once (no spend tuple: Gamma-Gamma fits repeat buyers); d shares a's
    # tuples in the other bucket; e is a repeat buyer whose net spend is 0 (refunded: no spend tuple either).
    def facts(rows):
        return pl.DataFrame(rows, schema=["customer_id", "purchase_days", "tenure_days", "recency_days",
                                          "net_revenue"], orient="row")  # fmt: skip

    first = fit_statistics(facts([("a", 2, 100, 10, 25.0), ("b", 2, 100, 10, 25.0), ("c", 1, 40, 40, 9.9)]))
    second = fit_statistics(facts([("d", 2, 100, 10, 25.0), ("e", 3, 100, 0, 0.0)]))
    merged = merge_fit_statistics([second, first])
    assert merged.purchases.rows() == [(1, 40, 40, 1), (2, 100, 10, 3), (3, 100, 0, 1)]
    assert merged.spend.rows() == [(2, 25.0, 3)]


def test_distinct_tuples_are_far_fewer_than_customers_in_a_large_shop():
    # Whole days over two years bound the tuples, not the customers: one-time buyers (x = 0, t_x = 0) have at
    # most 730 (one per T), and repeat buyers crowd onto the (t_x, T) pairs of few small x. Measured (seed 11): 100,000
    # customers give 44,896 purchase tuples, 1 million 349,294, 3 million 784,314 (the benchmark prints 10
    # million): the ratio grows with the shop.
    facts = simulated_facts(3_000_000, seed=11)
    statistics = fit_statistics(facts)
    once = statistics.purchases.filter(pl.col("purchase_days") == 1)
    repeat_buyers = facts.filter(pl.col("purchase_days") > 1).height
    print(f"\n{facts.height:,} customers: {statistics.purchases.height:,} purchase tuples ({once.height} of "
          f"{once['customers'].sum():,} one-time buyers); {repeat_buyers:,} repeat buyers: "
          f"{statistics.spend.height:,} spend tuples")  # fmt: skip
    assert once.height <= 730 and once["customers"].sum() == facts.height - repeat_buyers
    assert statistics.purchases.height < facts.height / 3
    assert statistics.spend.height < repeat_buyers / 2


def online_retail_facts() -> pl.DataFrame:
    """Per customer of Online Retail II, in SQL: purchase days, first and last, and net revenue as of the last
    invoice day: close to the pipeline's facts (examples/online_retail_ii.yaml cleans more), and real tuples."""
    with duckdb.connect() as memory:
        return memory.sql(
            """
        WITH lines AS (
            SELECT DISTINCT Invoice, "Customer ID" AS customer_id, InvoiceDate::DATE AS day, Quantity * Price AS value
            FROM read_parquet(?) WHERE "Customer ID" IS NOT NULL
        )
        SELECT customer_id::VARCHAR AS customer_id,
               count(DISTINCT day) FILTER (WHERE Invoice NOT LIKE 'C%') AS purchase_days,
               (SELECT max(day) FROM lines) - min(day) FILTER (WHERE Invoice NOT LIKE 'C%') AS tenure_days,
               (SELECT max(day) FROM lines) - max(day) FILTER (WHERE Invoice NOT LIKE 'C%') AS recency_days,
               round(sum(value), 2) AS net_revenue, (SELECT max(day) FROM lines) AS as_of_date
        FROM lines GROUP BY customer_id HAVING purchase_days > 0
        """,
            params=[str(ONLINE_RETAIL)],
        ).pl()


@pytest.mark.parametrize("model", ["bgnbd", "paretonbd"])
def test_the_grouped_fit_equals_the_fit_of_every_customer_on_online_retail(model):
    facts = online_retail_facts()
    assert 5_800 < facts.height < 6_000  # 5,942 customers, less those with cancellations alone
    settings = ValueSettings(model=model)
    grouped, one_by_one = fit(facts, settings), fit_one_by_one(facts, settings)
    assert_same_fit(grouped.purchases, one_by_one.purchases)
    assert_same_fit(grouped.spend, one_by_one.spend)
    assert grouped.frequency_spend_correlation == pytest.approx(one_by_one.frequency_spend_correlation, rel=1e-12)
