"""Hold-outs sized to tell (assets/campaigns/hold_outs.py)."""

from html import unescape

import numpy as np
import polars as pl
import pytest

from assets.campaigns.hold_outs import (
    control_size,
    detectable_uplift,
    needed_share,
    pooled_detectable,
    size_hold_outs,
)
from assets.outreach.uplift import SIGNIFICANCE, fisher_p, newcombe_interval
from pipelines.control import assign
from pipelines.settings import ControlSettings, SettingsError
from reports import review
from reports.outreach import tell_sentence
from reports.plan import pooling_advice
from reports.translations import TEXT
from tests.conftest import shop, table


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


def test_each_list_is_sized_by_its_closest_comparable_lists_within_the_bounds():
    """Earlier lists: warm-up win-back 900 contacted (180 bought, 20%) against 100 held out (10 bought, 10%): an
    uplift of 10 points over 10%; sprint engaged 1,000 against 1,000, 100 and 100 bought: no uplift."""
    past = pl.DataFrame({
        "phase": ["warm_up", "sprint"], "audience": ["important_winback", "engaged"], "contacted": [900, 1000],
        "held_out": [100, 1000], "buyers_contacted": [180, 100], "buyers_held_out": [10, 100],
    })  # fmt: skip
    lists = pl.DataFrame({
        "event_id": "e", "phase": ["warm_up", "after_glow", "sprint", "warm_up"],
        "audience": ["important_winback", "important_winback", "engaged", "potential"],
        "customers": [2000, 150, 5000, 40],
    })  # fmt: skip
    control = ControlSettings(share=0.1, min_list_size=100, min_share=0.05, max_share=0.3)
    sized = {row["phase"] + "/" + row["audience"]: row for row in size_hold_outs(lists, past, control).to_dicts()}

    same = sized["warm_up/important_winback"]
    assert (same["basis"], same["response_held_out"], same["expected_uplift"]) == ("phase+audience", 0.1, 0.1)
    # 2,000 customers at 10 points over 10%: a share of s holds out 2000 s, less 1.96 sqrt(2000 s (1 - s)) for
    # the hash's chance, and needs control_size(0.1, 0.1, (1 - s) / s); the first s in steps of 0.1% that gets
    # there is the needed share, inside the bounds here
    needed = same["needed_share"]
    enough = lambda s: 2000 * s - 1.959964 * (2000 * s * (1 - s)) ** 0.5 >= control_size(0.1, 0.1, (1 - s) / s)  # noqa: E731
    assert enough(needed) and not enough(needed - 0.001) and 0.05 < needed < 0.3
    assert same["control_share"] == needed and same["can_tell"]
    assert same["detectable_uplift"] <= 0.1

    small = sized["after_glow/important_winback"]  # only the audience in common; 150 cannot tell 10 points
    assert small["basis"] == "audience" and small["needed_share"] is None
    assert small["control_share"] == 0.3 and not small["can_tell"]  # the most the bounds allow: it adds to a pool

    flat = sized["sprint/engaged"]  # its comparable list showed no uplift: nothing to size for
    assert flat["expected_uplift"] == 0 and flat["control_share"] == 0.1 and not flat["can_tell"]

    tiny = sized["warm_up/potential"]  # nothing of its audience: every earlier list, pooled; under min_list_size
    assert tiny["basis"] == "all" and tiny["comparable_lists"] == 2 and tiny["control_share"] == 0.0
    assert tiny["response_held_out"] == pytest.approx(110 / 1100)


def test_a_larger_share_holds_out_the_same_customers_and_more():
    """The BLAKE2b draw is kept: a list's own share only moves the cut, so re-runs give the same groups and a
    list sized up holds out everyone it held out before."""
    ids = pl.DataFrame({"customer_id": [f"C{i:07d}" for i in range(5000)], "list": "double11-2024/warm_up"})
    control = ControlSettings(share=0.1)
    drawn = {
        share: assign(ids, pl.col("list"), ["list"], control, pl.lit(share)).filter("held_out")["customer_id"]
        for share in (0.1, 0.25)
    }
    assert set(drawn[0.1]) < set(drawn[0.25])
    assert 400 < len(drawn[0.1]) < 600 and 1100 < len(drawn[0.25]) < 1400  # 10% and 25% of 5,000, give or take
    # the default share, without a list's own, draws exactly the same customers
    assert assign(ids, pl.col("list"), ["list"], control).filter("held_out")["customer_id"].equals(drawn[0.1])


def test_no_list_that_can_tell_gets_advice_to_pool():
    """Two lists of 300 over 10% with an expected uplift of 3 points: neither can tell; pooled, 600 customers
    with 30% held out."""
    lists = pl.DataFrame({"event_id": "e", "phase": ["warm_up", "sprint"], "audience": ["potential", "engaged"],
                          "customers": [300, 300]})  # fmt: skip
    past = pl.DataFrame({"phase": ["warm_up"], "audience": ["potential"], "contacted": [900], "held_out": [100],
                         "buyers_contacted": [117], "buyers_held_out": [10]})  # fmt: skip
    control = ControlSettings(share=0.1, min_list_size=100, min_share=0.05, max_share=0.3)
    sized = size_hold_outs(lists, past, control)
    assert not sized["can_tell"].any() and sized["control_share"].to_list() == [0.3, 0.3]
    pooled = pooled_detectable(sized)
    assert pooled == pytest.approx(detectable_uplift(0.1, 600 * 0.7, 600 * 0.3))
    for language in ("en", "zh"):
        advice = pooling_advice(sized, pooled, TEXT[language])
        assert advice == TEXT[language]["none_can_tell"].format(points=f"{pooled * 100:.1f}")
        alone = TEXT[language]["too_small_to_tell"].format(
            points=f"{sized['detectable_uplift'][0] * 100:.1f}", uplift="3.0"
        )
        assert tell_sentence(sized.row(0, named=True), TEXT[language]) == alone


def test_each_list_says_in_advance_what_it_can_tell_in_either_language(two_years):
    """double11-2024's lists are sized by double11-2023's: campaigns.hold_outs has a row per list, each list
    holds out its row's share (the settings' 10%, no bounds being set; none under min_list_size), and the plan
    says in advance what each can tell."""
    targets = table(two_years, "outreach.campaign_targets").filter(pl.col("event_id") == "double11-2024")
    sized = table(two_years, "campaigns.hold_outs").filter(pl.col("event_id") == "double11-2024")
    made = targets.group_by("phase", "audience").agg(customers=pl.len(), held=pl.col("held_out").sum())
    joined = made.join(sized, on=["phase", "audience"], how="full", coalesce=True)
    assert joined.height == sized.height == made.height and (joined["customers"] == joined["customers_right"]).all()
    big = joined["customers"] >= two_years.outreach.control.min_list_size  # a smaller list holds out nobody
    assert joined["control_share"].to_list() == [0.1 if enough else 0.0 for enough in big]
    assert ((joined["held"] > 0) == big).all() and big.any() and set(sized["basis"]) <= {"phase+audience", "all"}
    event = {e.id: e for e in two_years.calendar()}["double11-2024"]
    results = table(two_years, "campaigns.results").filter(pl.col("event_id") == event.id)
    measured = set(results.filter(pl.col("section") == "outreach").select("dimension", "detail").rows())
    assert measured
    for language in ("en", "zh"):
        words = TEXT[language]
        html = unescape((two_years.output / "reports" / f"plan-double11-2024.{language}.html").read_text("utf-8"))
        review_page = unescape(review.review_html(
            "shop", "CNY", language, event, None, two_years.calendar(), results, hold_outs=sized))  # fmt: skip
        for row in sized.iter_rows(named=True):
            assert tell_sentence(row, words) in html
            if (row["phase"], row["audience"]) in measured:  # the review repeats the plan beside what it told
                assert words["planned_to_tell"].format(sentence=tell_sentence(row, words)) in review_page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"outreach": {"control": {"min_share": 0.4, "max_share": 0.3}}},
         r"outreach.control: .*min_share 0.4 is above max_share 0.3"),
        ({"outreach": {"control": {"min_share": 0.1}}}, r"outreach.control: .*set both or neither"),
        ({"events": {"band": [0.9, 0.1]}}, r"events: .*band: \[0.9, 0.1\]; expected two quantiles"),
    ],
)  # fmt: skip
def test_wrong_bounds_or_band_name_their_key(tmp_path, overrides, message):
    with pytest.raises(SettingsError, match=message):
        shop(tmp_path, **overrides)
