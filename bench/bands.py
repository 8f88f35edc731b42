"""Planning bands' coverage: how often a 10-90 band holds the simulated truth, over many simulated shops, and what
each part of the band adds. Each shop (tests/test_bands.py: BG/NBD purchases, Gamma-Gamma spend, 1,000 customers,
its parameters drawn at random) is fitted and its next 8 units simulated 99 times in three ways:

- true parameters: the shop's own, each customer's purchases and spend from their posteriors (what is left when
  the parameters are known: the simulation itself);
- fitted parameters: the fit's values alone;
- the band: parameters drawn from their fits' information matrices as well (assets/campaigns/bands.py).

A right band holds the truth in a share of shops whose count is Binomial(shops, 0.8); the 95% interval of that
count is printed beside. Below and above say on which side the misses fall. Seed 2026 with 150 shops is the
test's own run (the band row repeats its counts); the other rows take a second generator, so they leave it alone.

    flock /tmp/regulars-heavy.lock .venv/bin/python bench/bands.py [--shops 150] [--seeds 2026 7]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, clock, since  # noqa: E402

sys.path.insert(0, str(ROOT))
from assets.campaigns.bands import band, simulate_returning  # noqa: E402
from assets.customers.models import fit_bgnbd, fit_gammagamma  # noqa: E402
from tests.test_bands import DRAWS, HORIZON, fitted_band_draws, simulated_shops  # noqa: E402

MEASURES = ("buyers", "purchases", "revenue")
WAYS = ("true parameters", "fitted parameters", "the band")


def coverage(seed: int, shops: int) -> dict[str, np.ndarray]:
    """way -> (shops x measures) of -1 below the band, 0 inside, 1 above."""
    rng, other = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    where = {way: [] for way in WAYS}
    for purchase, spend, shop, truth in simulated_shops(shops, rng):
        banded = fitted_band_draws(shop, rng)
        purchase_fit = fit_bgnbd(shop.customers)
        spend_fit = fit_gammagamma(shop.purchases, np.where(shop.purchases > 1, shop.spend, np.nan))
        fitted = [list(purchase_fit.params.values()), list(spend_fit.params.values())]
        simulated = {
            way: simulate_returning("bgnbd", np.tile(p, (DRAWS, 1)), np.tile(s, (DRAWS, 1)), shop, HORIZON, 1, other)
            for way, (p, s) in (("true parameters", (purchase, spend)), ("fitted parameters", fitted))
        } | {"the band": banded}
        for way, draws in simulated.items():
            where[way].append([np.sign(truth[m] - np.clip(truth[m], *band(draws[m], (0.1, 0.9)))) for m in MEASURES])
    return {way: np.array(rows) for way, rows in where.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shops", type=int, default=150)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2026, 7])
    args = parser.parse_args()
    low, high = stats.binom.ppf([0.025, 0.975], args.shops, 0.8) / args.shops
    print(f"{args.shops} shops a seed; a right band holds {low:.0%}-{high:.0%} of them (Binomial, 95%)")
    print(f"{'seed':>5}  {'way':<18}" + "".join(f"{m + ' in (below/above)':>30}" for m in MEASURES))
    for seed in args.seeds:
        started = clock()
        for way, where in coverage(seed, args.shops).items():
            cells = [
                f"{(w == 0).sum()} = {(w == 0).mean():.0%} ({(w < 0).mean():.0%}/{(w > 0).mean():.0%})" for w in where.T
            ]
            print(f"{seed:>5}  {way:<18}" + "".join(f"{c:>30}" for c in cells))
        print(f"{seed:>5}  {since(started)['cpu_seconds']:.0f} s CPU")


if __name__ == "__main__":
    main()
