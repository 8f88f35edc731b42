"""Control groups and measured uplift: one list worked by hand, groups that do not depend on the run, the
outbox without held-out customers, opt-outs in neither group, and the demo generator's lift found again."""

from datetime import date, timedelta
from math import sqrt

import dagster as dg
import polars as pl
import pytest
from scipy import stats

from assets.outreach.uplift import newcombe_interval, reminder_results, responses, uplift
from pipelines.control import assign
from pipelines.definitions import CAMPAIGNS_JOB, OUTREACH_JOB, RANGE_END, RANGE_START, shop_job
from pipelines.settings import ControlSettings, OutreachSettings, SettingsError
from pipelines.sources import order_source
from pipelines.sources.synthetic import generate_orders, response_orders
from tests.conftest import ingest, read_outbox, shop, table

Z = 1.959964  # the normal quantile of a two-sided 95% interval


def wilson(buyers: int, n: int) -> tuple[float, float]:
    p, z2 = buyers / n, Z * Z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


def test_one_list_worked_by_hand():
    contact = date(2024, 5, 1)  # window: 1 May .. 14 May (14 days)
    members = pl.DataFrame({
        "customer_id": list("abcdefghij"), "contact_date": [contact] * 10,
        "held_out": [False] * 6 + [True] * 4, "channel": ["sms"] * 3 + ["app"] * 3 + ["sms"] * 4,
    })  # fmt: skip
    day = date.fromisoformat
    orders = pl.DataFrame(
        [("a", day("2024-05-01"), 100.0, "completed"), ("b", day("2024-05-03"), 40.0, "completed"),
         ("b", day("2024-05-10"), 20.0, "completed"), ("c", day("2024-05-14"), 20.0, "completed"),
         ("d", day("2024-05-15"), 500.0, "completed"),  # the day after the window
         ("e", day("2024-04-30"), 300.0, "completed"),  # the day before the contact
         ("f", day("2024-05-05"), 0.0, "cancelled"),  # not a purchase
         ("g", day("2024-05-02"), 40.0, "completed"), ("i", day("2024-05-20"), 90.0, "completed")],
        schema=["customer_id", "order_date", "amount", "status"], orient="row",
    )  # fmt: skip
    outcomes = responses(members, orders, 14, known_until=date(2024, 5, 31))
    row = uplift(outcomes, ["contact_date"], {"sms": 0.5}, coupon_cost=2.0).row(0, named=True)

    # contacted a, b, c bought of a..f; held out g of g..j
    assert (row["contacted"], row["held_out"], row["buyers_contacted"], row["buyers_held_out"]) == (6, 4, 3, 1)
    assert (row["response_contacted"], row["response_held_out"], row["uplift"]) == (0.5, 0.25, 0.25)
    (l1, u1), (l2, u2) = wilson(3, 6), wilson(1, 4)  # Newcombe: the two Wilson intervals combined
    assert row["uplift_low"] == pytest.approx(0.25 - sqrt((0.5 - l1) ** 2 + (u2 - 0.25) ** 2), abs=1e-6)
    assert row["uplift_high"] == pytest.approx(0.25 + sqrt((u1 - 0.5) ** 2 + (0.25 - l2) ** 2), abs=1e-6)
    assert row["uplift_low"] == pytest.approx(-0.2973, abs=1e-4) and row["uplift_high"] == pytest.approx(
        0.6233, abs=1e-4
    )
    assert not row["distinguishable"]  # the interval holds zero: too few to tell

    # revenue per customer: contacted (100 + 60 + 20) / 6 = 30, held out 40 / 4 = 10; Welch's interval
    assert (row["revenue_per_contacted"], row["revenue_per_held_out"], row["revenue_uplift"]) == (30.0, 10.0, 20.0)
    var_c, var_h = (70**2 + 30**2 + 10**2 + 3 * 30**2) / 5, (30**2 + 3 * 10**2) / 3  # 1720, 400
    se2 = var_c / 6 + var_h / 4
    df = se2**2 / ((var_c / 6) ** 2 / 5 + (var_h / 4) ** 2 / 3)
    half = stats.t.ppf(0.975, df) * sqrt(se2)
    assert (row["revenue_uplift_low"], row["revenue_uplift_high"]) == pytest.approx((20 - half, 20 + half))
    assert (row["orders_per_contacted"], row["orders_per_held_out"]) == (4 / 6, 0.25)

    # incremental: the uplift times the 6 contacted; cost: 3 messages by sms at 0.5 (app costs nothing
    # here), a coupon of 2 for each of the 3 contacted buyers
    assert row["incremental_buyers"] == pytest.approx(1.5) and row["incremental_revenue"] == pytest.approx(120.0)
    assert row["cost"] == pytest.approx(3 * 0.5 + 3 * 2.0)
    assert row["return_on_spend"] is None  # shown only where the uplift is judged, and 3/6 against 1/4 is not
    assert row["window_days"] == 14


def test_newcombe_interval_matches_his_worked_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II example (a): 56/70 against 48/80, difference
    # 0.2; method 10 (hybrid score, no continuity correction) gives 0.0524 to 0.3339. By hand: Wilson limits
    # 0.6918..0.8770 and 0.4905..0.7004, so 0.2 - sqrt(0.1082^2 + 0.1004^2) and 0.2 + sqrt(0.0770^2 + 0.1095^2)
    low, high = newcombe_interval((56, 48), (70, 80))
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def small_list(contacted: tuple[int, int], held_out: tuple[int, int]) -> pl.DataFrame:
    """A list of `contacted` = (buyers, customers) and `held_out` likewise: one row per member, as `responses`
    writes them (each buyer spent 50 with one order)."""
    rows = [(held, index < buyers) for held, (buyers, n) in ((False, contacted), (True, held_out))
            for index in range(n)]  # fmt: skip
    return pl.DataFrame(
        {"list": "x", "held_out": [held for held, _ in rows], "bought": [bought for _, bought in rows],
         "revenue": [50.0 * bought for _, bought in rows], "orders": [int(bought) for _, bought in rows],
         "window_days": 14, "channel": "sms"}
    )  # fmt: skip


def test_a_small_list_whose_interval_excludes_zero_is_still_too_few_to_tell():
    # 0 of 709 contacted bought, 1 of 70 held out: the one buyer among 779 falls in the held-out group with
    # probability 70/779, and the other table (the buyer contacted) is likelier, so Fisher's two-sided p = 70/779
    row = uplift(small_list((0, 709), (1, 70)), ["list"], {"sms": 0.05}, coupon_cost=2.0).row(0, named=True)
    assert row["p_value"] == pytest.approx(70 / 779)
    # Newcombe's interval alone excludes zero here (-7.7 to -0.1 points): not enough to call it
    u1, l2 = wilson(0, 709)[1], wilson(1, 70)[0]
    assert row["uplift_high"] == pytest.approx(-1 / 70 + sqrt(u1**2 + (1 / 70 - l2) ** 2), abs=1e-6)
    assert round(row["uplift_low"] * 100, 1) == -7.7 and round(row["uplift_high"] * 100, 1) == -0.1
    assert not row["distinguishable"] and row["return_on_spend"] is None
    assert row["incremental_revenue"] == pytest.approx(-709 * 50 / 70)  # still shown, with its interval

    # the same rates, ten times the customers: 0/7090 against 10/700, p = C(7080, 700) / C(7790, 700) < 0.001
    judged = uplift(small_list((0, 7090), (10, 700)), ["list"], {"sms": 0.05}, coupon_cost=2.0).row(0, named=True)
    assert judged["p_value"] < 0.001 and judged["distinguishable"]
    assert judged["return_on_spend"] == pytest.approx(-7090 * 50 / 70 / (7090 * 0.05))


def test_reminders_are_measured_per_day_and_per_class_over_the_days_that_hold_someone_out():
    d1, d2 = date(2024, 5, 1), date(2024, 5, 2)
    reminders = pl.DataFrame({
        "contact_date": [d1] * 4 + [d2] * 2, "customer_id": ["a", "b", "c", "d", "e", "f"],
        "rfm_class": ["new", "new", "new", "potential", "new", "potential"],
        "held_out": [False, True, False, True, False, False],  # 2 May held out nobody
        "channel": ["app"] * 6,
    })  # fmt: skip
    orders = pl.DataFrame(
        {"customer_id": ["a", "e"], "order_date": [d1, d2], "amount": [10.0, 20.0], "status": ["completed"] * 2}
    )
    settings = OutreachSettings(response_days=7, cost_per_message={"app": 1.0})
    results = reminder_results(reminders, orders, date(2024, 5, 31), settings)
    rows = {(r["dimension"], r["value"]): r for r in results.iter_rows(named=True)}
    assert set(rows) == {("day", "2024-05-01"), ("day", "2024-05-02"), ("class", "new"), ("class", "potential"),
                         ("all", "all")}  # fmt: skip
    assert (rows[("day", "2024-05-02")]["contacted"], rows[("day", "2024-05-02")]["held_out"]) == (2, 0)
    assert rows[("day", "2024-05-02")]["uplift"] is None and rows[("day", "2024-05-02")]["cost"] == 2.0
    # classes and the total count 1 May only: new = a, c contacted (a bought), b held out
    new = rows[("class", "new")]
    assert (new["contacted"], new["held_out"], new["buyers_contacted"], new["uplift"]) == (2, 1, 1, 0.5)
    assert (rows[("all", "all")]["contacted"], rows[("all", "all")]["held_out"]) == (2, 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"outreach": {"control": {"share": 1.0}}}, "outreach.control.share: Input should be less than 1"),
        ({"outreach": {"cost_per_message": {"sms": -0.1}}}, "outreach.cost_per_message.sms: Input should be greater"),
        ({"source": {"kind": "synthetic", "response_lift": {"vip": 0.1}}}, "response_lift: unknown class 'vip'"),
    ],
)
def test_wrong_control_cost_or_lift_settings_name_their_key(tmp_path, overrides, message):
    with pytest.raises(SettingsError, match=message):
        shop(tmp_path, **overrides)


def test_the_global_control_group_is_held_out_of_every_list_whatever_its_size():
    ids = pl.DataFrame({"customer_id": [f"C{n:05d}" for n in range(2000)]})
    everyone = ControlSettings(share=0.0, global_share=0.05, min_list_size=10_000)  # no list is big enough
    lists = [assign(ids.with_columns(list=pl.lit(name)), pl.col("list"), ["list"], everyone) for name in "ab"]
    held = [set(frame.filter(pl.col("held_out"))["customer_id"]) for frame in lists]
    assert held[0] == held[1] and 60 < len(held[0]) < 140  # the same 5% of customers in both lists

    per_list = ControlSettings(share=0.2, global_share=0.0, min_list_size=100)
    lists = [assign(ids.with_columns(list=pl.lit(name)), pl.col("list"), ["list"], per_list) for name in "ab"]
    held = [set(frame.filter(pl.col("held_out"))["customer_id"]) for frame in lists]
    assert all(300 < len(h) < 500 for h in held) and len(held[0] & held[1]) < 150  # drawn apart: about 20% of 20%
    small = assign(ids.head(99).with_columns(list=pl.lit("a")), pl.col("list"), ["list"], per_list)
    assert not small["held_out"].any()  # under min_list_size


LIFT = {"important_winback": 0.5, "important_retain": 0.5, "important_develop": 0.5, "potential": 0.5}


@pytest.fixture(scope="module")
def answering(tmp_path_factory):
    """A small shop that answers its double11-2024 lists strongly, half of every list held out."""
    settings = shop(
        tmp_path_factory.mktemp("uplift"),
        source={"kind": "synthetic", "seed": 11, "customers": 1500, "response_lift": LIFT},
        outreach={"control": {"share": 0.5, "min_list_size": 1}, "cost_per_message": {"app": 0.1}},
    )
    ingest(settings, "2024-01-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CAMPAIGNS_JOB)
        assert job.execute_in_process(instance=instance, partition_key="double11-2024").success
    return settings


def plan(settings, event: str = "double11-2024") -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CAMPAIGNS_JOB)
        assert job.execute_in_process(instance=instance, partition_key=event).success


def outreach(settings, first: str, last: str) -> pl.DataFrame:
    tags = {RANGE_START: first, RANGE_END: last}
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, OUTREACH_JOB)
        assert job.execute_in_process(instance=instance, tags=tags).success
    return table(settings, "outreach.repurchase_reminders")


def test_measured_uplift_holds_the_lift_the_generator_used(answering):
    targets = table(answering, "outreach.campaign_targets")
    warm_up = targets.filter(pl.col("phase") == "warm_up")
    audience = warm_up.filter(~pl.col("held_out"))["audience"].value_counts().sort("count")["audience"][-1]
    members = warm_up.filter(pl.col("audience") == audience)
    results = table(answering, "campaigns.results").filter(
        (pl.col("section") == "outreach") & (pl.col("dimension") == "warm_up") & (pl.col("detail") == audience)
    )
    measured = dict(results.select("measure", "actual").rows())

    # the generator's answers to this list (its draw: event and phase), and every other completed order
    source = answering.source
    clean = generate_orders(source.seed, source.customers, answering.history_start, answering.history_end, 0.0)
    answers = response_orders(clean, order_source(answering).responses(), source.seed, answering.history_end)
    own = set(answers.filter(pl.col("draw") == "double11-2024/warm_up")["order_id"])
    assert own, "the generator answered this list"
    contact = members["contact_date"][0]
    window = table(answering, "staging.orders").filter(
        (pl.col("status") == "completed")
        & pl.col("order_date").is_between(contact, contact + timedelta(days=answering.outreach.response_days - 1))
    )
    answered = set(window.filter(pl.col("order_id").is_in(list(own)))["customer_id"])
    anyway = set(window.filter(~pl.col("order_id").is_in(list(own)))["customer_id"])
    contacted = set(members.filter(~pl.col("held_out"))["customer_id"])
    lift = len(contacted & (answered - anyway)) / len(contacted)  # bought only because of this list's message

    assert measured["contacted"] == len(contacted)
    assert lift > 0.2  # half the class's customers answer, less those who would have bought anyway
    assert measured["uplift_low"] <= lift <= measured["uplift_high"]
    assert measured["distinguishable"] == 1.0


def test_groups_are_the_same_on_every_run_and_held_out_customers_never_reach_the_outbox(answering, tmp_path):
    before = table(answering, "outreach.campaign_targets")
    plan(answering)
    assert table(answering, "outreach.campaign_targets").equals(before)
    sent = read_outbox(answering.output / "outbox" / "double11-2024" / "targets.parquet")
    assert sent.join(before.filter(pl.col("held_out")), on=["customer_id", "phase"]).is_empty()
    assert sent.height == before.filter(~pl.col("held_out")).height

    # a day's reminders hold out the same customers whether the run covers ten days or that day alone
    ten_days = outreach(answering, "2024-09-01", "2024-09-10").filter(pl.col("contact_date") == date(2024, 9, 5))
    one_day = outreach(answering, "2024-09-05", "2024-09-05").filter(pl.col("contact_date") == date(2024, 9, 5))
    assert ten_days.height > 0 and ten_days["held_out"].any()
    assert one_day.select("customer_id", "held_out").equals(ten_days.select("customer_id", "held_out"))


def test_an_opted_out_customer_is_in_neither_group(answering):
    before = table(answering, "outreach.campaign_targets").filter(pl.col("phase") == "warm_up")
    held, reached = (
        before.filter(pl.col("held_out"))["customer_id"][0],
        before.filter(~pl.col("held_out"))["customer_id"][0],
    )
    opted = answering.model_copy(
        update={"outreach": answering.outreach.model_copy(update={"opt_out": [held, reached]})}
    )
    opted = type(answering).model_validate(opted.model_dump())  # the opt-outs read again
    plan(opted)
    after = table(opted, "outreach.campaign_targets")
    assert not set(after["customer_id"]) & {held, reached}
    # everyone else keeps their group
    kept = before.filter(~pl.col("customer_id").is_in([held, reached])).select("customer_id", "held_out")
    assert (
        kept.join(after.filter(pl.col("phase") == "warm_up"), on="customer_id")
        .filter(pl.col("held_out") != pl.col("held_out_right"))
        .is_empty()
    )
    plan(answering)  # as it was, for the other tests
