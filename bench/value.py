"""Customer value benchmark: fitting a purchase model (BG/NBD, then Pareto/NBD) and Gamma-Gamma and scoring every
customer (core.customer_value's work) for one million customers, each beside the 30 s target and a bare numpy pass
(the BG/NBD log-likelihood of every customer once).

    flock /tmp/regulars-bench.lock python bench/value.py [--customers 1000000] [--model bgnbd paretonbd]

Customers are drawn from BG/NBD and Gamma-Gamma (fixed seed) with first purchases spread over two years, in
whole days as the facts hold them.
"""

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, print_table  # noqa: E402

sys.path.insert(0, str(ROOT))
from assets.customers.models import Customers, bgnbd_log_likelihood, simulate_bgnbd, simulate_spend  # noqa: E402
from assets.customers.value import customer_value, fit  # noqa: E402
from pipelines.settings import ValueSettings  # noqa: E402

TARGET_SECONDS = 30
AS_OF = date(2025, 12, 31)
PURCHASES, SPEND = (0.25, 25.0, 0.8, 2.5), (3.0, 3.5, 160.0)  # per day; near the demo shop's fits


def simulated(customers: int) -> pl.DataFrame:
    """core.customer_facts' columns the models read, for simulated customers (also bench/fits.py's)."""
    rng = np.random.default_rng(16)
    drawn = simulate_bgnbd(PURCHASES, rng.integers(0, 730, customers).astype(float), rng)
    t_x = np.minimum(np.ceil(drawn.t_x), drawn.T)
    purchase_days = drawn.x + 1
    return pl.DataFrame({
        "purchase_days": purchase_days.astype(np.int64), "tenure_days": drawn.T.astype(np.int64),
        "recency_days": (drawn.T - t_x).astype(np.int64),
        "net_revenue": simulate_spend(SPEND, purchase_days, rng) * purchase_days,
    })  # fmt: skip


def facts(customers: int) -> pl.DataFrame:
    """`simulated` customers with their ids and as-of date, as customer_value reads them."""
    ids = pl.Series("customer_id", [f"C{n:08d}" for n in range(customers)])
    return simulated(customers).select(ids, pl.lit(AS_OF).alias("as_of_date"), pl.all())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--model", nargs="+", choices=["bgnbd", "paretonbd"], default=["bgnbd", "paretonbd"])
    args = parser.parse_args()
    shop = facts(args.customers)

    started = time.perf_counter()
    x = (shop["purchase_days"] - 1).to_numpy().astype(float)
    T = shop["tenure_days"].to_numpy().astype(float)
    bgnbd_log_likelihood(PURCHASES, Customers(x, T - shop["recency_days"].to_numpy(), T)).sum()
    bare = time.perf_counter() - started

    n = f"{args.customers:,} customers"
    rows = [("bare numpy: BG/NBD log-likelihood of every customer once", f"{bare:.2f} s", "")]
    for model in args.model:
        settings = ValueSettings(model=model)
        started = time.perf_counter()
        fits = fit(shop, settings)
        fitted = time.perf_counter()
        value = customer_value(shop, fits, settings)
        done = time.perf_counter()
        total = done - started
        verdict = "met" if total <= TARGET_SECONDS else "NOT met"
        params = ", ".join(f"{k} {v:.3g}" for k, v in fits.purchases.params.items())
        rows += [
            (f"fit + score, {n} ({model})", f"{total:.1f} s", f"<= {TARGET_SECONDS} s: {verdict}"),
            ("  of which the fits", f"{fitted - started:.1f} s", ""),
            ("  of which scoring (P(alive), 30/90/365 days, 12 months, next date)", f"{done - fitted:.1f} s", ""),
            ("  ratio: fit + score / bare pass", f"{total / bare:.0f}x", ""),
            ("  rows scored", f"{value.height:,}", ""),
            (f"  {model} parameters (drawn from BG/NBD {PURCHASES})", params, ""),
        ]  # fmt: skip
    rows.append(("peak memory", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB", ""))
    print_table(rows)


if __name__ == "__main__":
    main()
