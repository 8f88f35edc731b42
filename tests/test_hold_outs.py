"""Hold-outs sized to tell (assets/campaigns/hold_outs.py)."""

import math

import numpy as np
import polars as pl
import pytest

from assets.campaigns.hold_outs import control_size, detectable_uplift, needed_share, size_hold_outs
from assets.outreach.uplift import SIGNIFICANCE, fisher_p, newcombe_interval
from pipelines.settings import ControlSettings


def test_control_size_worked_by_hand():
    """Fleiss, Levin & Paik's size for p0 = 10%, an uplift of 5 points, equal groups: p = 0.125;
    n' = (1.95996 x sqrt(2 x 0.125 x 0.875) + 0.84162 x sqrt(0.1 x 0.9 + 0.15 x 0.85))^2 / 0.05^2
       = (1.95996 x 0.467707 + 0.84162 x 0.466369)^2 / 0.0025 = 1.309192^2 / 0.0025 = 685.59;
    n = 685.59 / 4 x (1 + sqrt(1 + 4 / (685.59 x 0.05)))^2 = 171.40 x 2.056735^2 = 725.0, so 726 a group."""
    assert control_size(0.10, 0.05, 1.0) == pytest.approx(725.0, abs=0.1)
    # four contacted per held out (r = 4): fewer held out, more in all. p = (0.1 + 4 x 0.15) / 5 = 0.14;
    # n' = (1.95996 x sqrt(5 x 0.14 x 0.86) + 0.84162 x sqrt(4 x 0.09 + 0.1275))^2 / (4 x 0.05^2)
    #    = (1.95996 x 0.775887 + 0.84162 x 0.698212)^2 / 0.01 = 2.108339^2 / 0.01 = 444.51;
    # n = 444.51 / 4 x (1 + sqrt(1 + 10 / (444.51 x 4 x 0.05)))^2 = 111.13 x 2.054744^2 = 469.2
    assert control_size(0.10, 0.05, 4.0) == pytest.approx(469.2, abs=0.1)


def detects(p0: float, uplift: float, customers: int, share: float, runs: int, rng) -> float:
    """The share of `runs` simulated lists of `customers`, `share` of them held out, in which the review's test
    finds the planted uplift: Fisher's exact test below 5% and Newcombe's interval above nought
    (assets.outreach.uplift's `distinguishable`)."""
    found = 0
    for held_out in rng.binomial(customers, share, runs):
        contacted = customers - int(held_out)
        counts = (
            (int(rng.binomial(contacted, p0 + uplift)), int(rng.binomial(held_out, p0))),
            (contacted, int(held_out)),
        )
        low, _ = newcombe_interval(*counts)
        found += fisher_p(*counts) < SIGNIFICANCE and low > 0
    return found / runs


@pytest.mark.parametrize("customers, p0, uplift", [(6000, 0.10, 0.04), (2500, 0.05, 0.05), (1200, 0.20, 0.10)])
def test_the_sized_share_detects_a_planted_uplift_in_at_least_80_percent_of_runs(customers, p0, uplift):
    """The share chosen for a list detects the uplift it was sized for in at least 80% of 1,000 simulated lists:
    held out as the hash holds out (each customer apart, with the share's chance), responses drawn with the
    uplift planted, judged as the review judges."""
    share = needed_share(customers, p0, uplift)
    assert detects(p0, uplift, customers, share, 1000, np.random.default_rng(7)) >= 0.80
    # and 30% fewer held out fall below 80%: the size is not merely ample (here 84%, 89% and 87% at the share,
    # 69%, 75% and 76% below it; the continuity correction is on the safe side for rare responses)
    assert detects(p0, uplift, customers, share * 0.7, 1000, np.random.default_rng(7)) < 0.80
