"""Parameter recovery: customers drawn from known BG/NBD and Gamma-Gamma parameters (20,000 a run, ten runs
per parameter set, fixed seeds), fitted again; how often each parameter's 95% interval holds the true value.
Target: at least 9 runs of 10, for every parameter of every set. The interval the fits report is the one on the log
scale they are fitted in (exp(log θ ± 1.96 se(log θ))); beside it, the Wald interval on the natural scale
(θ ± 1.96 se(θ), se by the delta method) that they reported before.

    flock /tmp/regulars-bench.lock python bench/value_recovery.py [--runs 10] [--customers 20000]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, print_table  # noqa: E402

sys.path.insert(0, str(ROOT))
from assets.customers.models import Z_95, fit_bgnbd, fit_gammagamma, simulate_bgnbd, simulate_spend  # noqa: E402

# (BG/NBD r, alpha, a, b in weeks; Gamma-Gamma p, q, v; customers' ages in weeks)
SETS = [
    ((0.243, 4.414, 0.793, 2.426), (6.0, 4.0, 15.0), (20, 78)),  # CDNOW's (Fader, Hardie & Lee 2005)
    ((0.5, 8.0, 0.7, 2.5), (3.0, 3.5, 160.0), (26, 104)),
    ((1.2, 20.0, 0.3, 4.0), (1.7, 3.9, 650.0), (4, 104)),  # a near Online Retail II's
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args()
    rows, totals = [], np.zeros(2, dtype=int)
    for number, (purchases, spend, ages) in enumerate(SETS, 1):
        held = {}  # parameter -> runs inside its log-scale interval, inside its natural-scale one
        for run in range(args.runs):
            rng = np.random.default_rng(1000 * number + run)
            customers = simulate_bgnbd(purchases, rng.uniform(*ages, args.customers), rng)
            for truth, fitted in (
                (purchases, fit_bgnbd(customers)),
                (spend, fit_gammagamma(customers.x, simulate_spend(spend, customers.x, rng))),
            ):
                for (name, value), true in zip(fitted.params.items(), truth, strict=True):
                    low, high = fitted.intervals[name]
                    inside = np.array([low <= true <= high, abs(value - true) <= Z_95 * fitted.std_errors[name]])
                    held[f"{fitted.model} {name} {true:g}"] = held.get(f"{fitted.model} {name} {true:g}", 0) + inside
        for name, (log_scale, natural) in held.items():
            verdict = "met" if log_scale >= 0.9 * args.runs else "NOT met"
            rows.append((f"set {number}: {name}", f"{log_scale} of {args.runs} (natural scale: {natural})",
                         f"at least {0.9 * args.runs:g}: {verdict}"))  # fmt: skip
            totals += (log_scale, natural)
    intervals = args.runs * len(rows)
    rows.append((
        "all intervals holding the truth",
        f"{totals[0]} of {intervals} = {totals[0] / intervals:.1%} (natural scale: {totals[1] / intervals:.1%})",
        "95% for a calibrated interval",
    ))  # fmt: skip
    print_table(rows)


if __name__ == "__main__":
    main()
