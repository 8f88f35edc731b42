"""Fits on distinct tuples against fits on every customer: BG/NBD and Gamma-Gamma (core.model_fits' work) for
simulated shops of 1 and 10 million customers, each size in a fresh process (its own peak memory).

    flock /tmp/regulars-bench.lock python bench/fits.py [--customers 1000000 10000000]

Grouped: `fit_statistics` (Polars: customers counted per distinct (purchase days, tenure, recency), repeat buyers
per distinct (purchase days, net revenue)) and `fit_grouped`, each tuple once weighted by its count. Per customer:
the same likelihoods with every customer's own term (weight 1 per row). Customers are drawn as in bench/value.py
(BG/NBD and Gamma-Gamma, first purchases over two years, whole days), net revenue rounded to cents.
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, clock, print_table, since  # noqa: E402

sys.path.insert(0, str(ROOT))
from value import simulated  # noqa: E402

from assets.customers.models import (  # noqa: E402
    fit_bgnbd,
    fit_gammagamma,
    independence,
)
from assets.customers.value import fit_grouped, fit_statistics, model_inputs  # noqa: E402
from pipelines.settings import ValueSettings  # noqa: E402


def facts(customers: int) -> pl.DataFrame:
    """core.customer_facts' columns the fits read, for simulated customers (bench/value.py's), revenue in cents."""
    return simulated(customers).with_columns(pl.col("net_revenue").round(2))


def measure(customers: int) -> dict:
    """Both fits of one simulated shop, timed, and how far apart their parameters are in standard errors."""
    shop, settings = facts(customers), ValueSettings()
    started = clock()
    statistics = fit_statistics(shop)
    grouping = since(started)
    grouped = fit_grouped(statistics, settings)
    grouped_time = since(started)
    each, purchases, spend = model_inputs(shop, settings.unit)
    repeat_spend = np.where(purchases > 1, spend, np.nan)
    started = clock()
    one_by_one = (fit_bgnbd(each, np.ones(customers)), fit_gammagamma(purchases, repeat_spend))
    independence(purchases, repeat_spend)
    one_by_one_time = since(started)
    apart = max(
        abs(value - fitted.params[name]) / grouped_fit.std_errors[name]
        for grouped_fit, fitted in zip((grouped.purchases, grouped.spend), one_by_one, strict=True)
        for name, value in grouped_fit.params.items()
    )
    return {
        "customers": customers, "repeat_buyers": int((purchases > 1).sum()),
        "purchase_tuples": statistics.purchases.height, "spend_tuples": statistics.spend.height,
        "grouping": grouping, "grouped": grouped_time, "one_by_one": one_by_one_time,
        "apart": apart, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }  # fmt: skip


def seconds(time: dict) -> str:
    return f"{time['seconds']:.1f} s ({time['cpu_seconds']:.1f} s)"


def ratio(time: dict, to: dict) -> str:
    return f"{time['seconds'] / to['seconds']:.1f}x ({time['cpu_seconds'] / to['cpu_seconds']:.1f}x)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--one", type=int, help="measure one size in this process and print it as JSON")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for customers in args.customers:
        command = [sys.executable, __file__, "--one", str(customers)]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        n = f"{customers:,} customers"
        rows += [
            (f"{n}: distinct (x, t_x, T)", f"{result['purchase_tuples']:,}",
             f"{customers / result['purchase_tuples']:.1f} customers per tuple"),
            (f"{n}: distinct (purchase days, net revenue) of repeat buyers", f"{result['spend_tuples']:,}",
             f"of {result['repeat_buyers']:,} repeat buyers"),
            (f"{n}: grouped fit, BG/NBD + Gamma-Gamma, wall (CPU)", seconds(result["grouped"]),
             f"of which grouping (Polars) {seconds(result['grouping'])}"),
            (f"{n}: fit on every customer, wall (CPU)", seconds(result["one_by_one"]),
             f"{ratio(result['one_by_one'], result['grouped'])} the grouped fit"),
            (f"{n}: parameters apart", f"{result['apart']:.1e} se", "largest over the 7 parameters"),
            (f"{n}: peak memory", f"{result['peak_gib']:.2f} GiB", ""),
        ]  # fmt: skip
    print_table(rows)


if __name__ == "__main__":
    main()
