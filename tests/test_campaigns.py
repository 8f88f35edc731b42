"""Sales events: the calendar and its errors, goals recomputed independently, target lists
under opt-outs and the frequency cap, and events without a past or without orders."""

import json
import math
from datetime import date, datetime, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.campaigns.goals import GOAL_SCHEMA, event_actuals, growth_of, plan_goals
from assets.campaigns.results import BUILD_UP_NEWCOMERS, class_response, performance
from pipelines.calendar import LUNAR_NEW_YEAR, Event, around, comparable, preset
from pipelines.definitions import CAMPAIGNS_JOB, OUTREACH_JOB, shop_job
from pipelines.settings import SettingsError
from reports.review import growth_basis
from reports.translations import TEXT
from tests.conftest import file_shop, ingest, read_outbox, shop, table


def test_preset_dates_by_year():
    double11 = preset("double11", 2024)
    assert double11.phases == {
        "build_up": (date(2024, 9, 20), date(2024, 10, 19)), "warm_up": (date(2024, 10, 20), date(2024, 11, 10)),
        "sprint": (date(2024, 11, 11), date(2024, 11, 11)), "after_glow": (date(2024, 11, 12), date(2024, 11, 18)),
    }  # fmt: skip
    assert preset("black_friday", 2024).sprint == (date(2024, 11, 29), date(2024, 11, 29))
    assert preset("cyber_monday", 2025).sprint == (date(2025, 12, 1), date(2025, 12, 1))
    assert preset("newyear", 2025).sprint == (date(2025, 1, 8), date(2025, 1, 17))  # before 29 January


def new_moons_utc(year: int) -> list[datetime]:
    """The new moons of January to February of a year, from Meeus' Astronomical Algorithms (ch. 49: the mean
    lunation and its periodic terms, planetary terms left out: within a minute or two of the true moment)."""
    moons = []
    for k in range(round((year - 2000) * 12.3685) - 1, round((year - 2000) * 12.3685) + 3):
        t = k / 1236.85
        jde = 2451550.09766 + 29.530588861 * k + 0.00015437 * t**2 - 0.00000015 * t**3
        e = 1 - 0.002516 * t - 0.0000074 * t**2
        m, mp, f, om = (math.radians(x) for x in (
            2.5534 + 29.1053567 * k - 0.0000014 * t**2, 201.5643 + 385.81693528 * k + 0.0107582 * t**2,
            160.7108 + 390.67050284 * k - 0.0016118 * t**2, 124.7746 - 1.56375588 * k + 0.0020672 * t**2,
        ))  # fmt: skip
        jde += (
            -0.4072 * math.sin(mp) + 0.17241 * e * math.sin(m) + 0.01608 * math.sin(2 * mp)
            + 0.01039 * math.sin(2 * f) + 0.00739 * e * math.sin(mp - m) - 0.00514 * e * math.sin(mp + m)
            + 0.00208 * e * e * math.sin(2 * m) - 0.00111 * math.sin(mp - 2 * f) - 0.00057 * math.sin(mp + 2 * f)
            + 0.00056 * e * math.sin(2 * mp + m) - 0.00042 * math.sin(3 * mp) + 0.00042 * e * math.sin(m + 2 * f)
            + 0.00038 * e * math.sin(m - 2 * f) - 0.00024 * e * math.sin(2 * mp - m) - 0.00017 * math.sin(om)
        )  # fmt: skip
        delta_t = (64 + 0.5 * (year - 2000)) / 86400  # terrestrial minus universal time, about a minute
        moons.append(datetime(2000, 1, 1, 12) + timedelta(days=jde - delta_t - 2451545.0))
    return moons


def test_the_new_year_table_holds_the_new_moon_after_20_january_in_beijing_to_2050():
    # the Chinese New Year is the day (Beijing time, UTC+8) of the first new moon from 21 January on (the second
    # after the winter solstice, but in years such as 2033 with a leap eleventh month), at the latest 20 February
    assert min(LUNAR_NEW_YEAR) <= 2019 and max(LUNAR_NEW_YEAR) >= 2050
    for year, day in LUNAR_NEW_YEAR.items():
        beijing = [(moon + timedelta(hours=8)).date() for moon in new_moons_utc(year)]
        assert min(d for d in beijing if d >= date(year, 1, 21)) == day <= date(year, 2, 20), year


def test_a_new_year_festival_beyond_the_table_stops_the_settings_saying_so(tmp_path):
    assert preset("newyear", 2050).sprint == (date(2050, 1, 2), date(2050, 1, 11))  # before 23 January
    with pytest.raises(
        SettingsError,
        match="preset 'newyear' has no dates for 2051: the Chinese New Year is known "
        "for 2000 to 2050; add the year's festival under events.custom",
    ):
        shop(tmp_path, history_start="2050-01-01", history_end="2050-06-30", events={"presets": ["newyear"]})


def test_overrides_and_shop_events_and_comparable_events(tmp_path):
    settings = shop(tmp_path, events={
        "overrides": {"double11-2024": {"warm_up": ["2024-10-14", "2024-11-10"],
                                        "build_up": ["2024-09-01", "2024-10-13"]}},
        "custom": [{"id": "anniversary-2024", "sprint": ["2024-08-08", "2024-08-10"]}],
    })  # fmt: skip
    events = {e.id: e for e in settings.calendar()}
    assert events["double11-2024"].phases["warm_up"] == (date(2024, 10, 14), date(2024, 11, 10))
    assert events["anniversary-2024"].kind == "anniversary"
    assert comparable(events["double11-2025"], list(events.values())).id == "double11-2024"
    assert comparable(events["double11-2024"], list(events.values())) is None


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"presets": ["singles_day"]}, "unknown preset 'singles_day'"),
        (
            {"overrides": {"double11-2024": {"warm_up": ["2024-10-01", "2024-11-10"]}}},
            "before the phase before it ends",
        ),
        (
            {"overrides": {"double11-2024": {"sprint": ["2024-11-12", "2024-11-11"]}}},
            "ends (2024-11-11) before it starts",
        ),
        ({"overrides": {"double11-2099": {"sprint": ["2099-11-11", "2099-11-11"]}}}, "no event 'double11-2099'"),
        ({"overrides": {"double11-2024": {"presale": ["2024-10-01", "2024-10-02"]}}}, "unknown phase presale"),
        ({"plan": {"warm_up": ["vip"]}}, "unknown audience 'vip'"),
    ],
)
def test_each_calendar_error_fails_at_load_with_a_clear_message(tmp_path, events, message):
    with pytest.raises(SettingsError) as error:
        shop(tmp_path, events=events)
    assert "events" in str(error.value) and message in str(error.value)


SELLING = {
    "double11-2023": (date(2023, 10, 20), date(2023, 11, 18)),
    "double11-2024": (date(2024, 10, 20), date(2024, 11, 18)),
}
BUILD_UP = {"double11-2023": date(2023, 9, 20), "double11-2024": date(2024, 9, 20)}


def test_goals_recomputed_independently_from_the_orders(two_years):
    with duckdb.connect(str(two_years.warehouse), read_only=True) as conn:

        def one(sql, *params):
            return conn.execute(sql, list(params)).fetchall()[0]

        first, last = SELLING["double11-2023"]
        new, returning = one("""
            WITH first_buy AS (SELECT customer_id, min(order_date) f FROM staging.orders
                               WHERE status='completed' GROUP BY ALL),
                 buyers AS (SELECT DISTINCT customer_id FROM staging.orders
                            WHERE status='completed' AND order_date BETWEEN ? AND ?)
            SELECT count(*) FILTER (WHERE f >= ?), count(*) FILTER (WHERE f < ?)
            FROM buyers JOIN first_buy USING (customer_id)
        """, first, last, first, first)  # fmt: skip

        def trailing(start):
            return one("SELECT count(DISTINCT customer_id) FILTER (WHERE status='completed'), sum(amount)"
                       " FROM staging.orders WHERE order_date BETWEEN ? AND ?",
                       start - timedelta(days=90), start - timedelta(days=1))  # fmt: skip

        (buyers_now, _), (buyers_then, _) = trailing(BUILD_UP["double11-2024"]), trailing(BUILD_UP["double11-2023"])
        rates = dict(conn.execute("""
            SELECT b.rfm_class, avg(CASE WHEN o.customer_id IS NULL THEN 0 ELSE 1 END)
            FROM campaigns.baselines b LEFT JOIN (SELECT DISTINCT customer_id FROM staging.orders
                 WHERE status='completed' AND order_date BETWEEN ? AND ?) o USING (customer_id)
            WHERE b.event_id = 'double11-2023' GROUP BY ALL""", [first, last]).fetchall())  # fmt: skip
        sizes = dict(
            conn.execute(
                "SELECT rfm_class, count(*) FROM campaigns.baselines WHERE event_id = 'double11-2024' GROUP BY ALL"
            ).fetchall()
        )
        goals = {(m, c): (g, a, json.loads(i)) for m, c, g, a, i in conn.execute(
            "SELECT measure, rfm_class, goal, comparable_actual, inputs FROM campaigns.goals"
            " WHERE event_id = 'double11-2024'"
        ).fetchall()}  # fmt: skip
    assert goals[("new_buyers", None)][1] == new and goals[("returning_buyers", None)][1] == returning
    assert goals[("new_buyers", None)][0] == pytest.approx(new * buyers_now / buyers_then, abs=0.01)
    expected_returning = sum(size * rates.get(cls, 0.0) for cls, size in sizes.items())
    assert goals[("returning_buyers", None)][0] == pytest.approx(expected_returning, abs=0.05)
    assert goals[("new_buyers", None)][2]["buyers_now"] == buyers_now


def test_targets_skip_opt_outs_and_anyone_inside_the_cap_across_lists(two_years):
    targets = table(two_years, "outreach.campaign_targets").filter(pl.col("event_id") == "double11-2024")
    reminders = table(two_years, "outreach.repurchase_reminders")
    assert set(targets["phase"]) == {"warm_up", "sprint", "after_glow"}
    assert not set(targets["customer_id"]) & {"C0000001", "C0000002", "C0000003"}
    contacts = pl.concat(
        [reminders.select("customer_id", "contact_date"), targets.select("customer_id", "contact_date")]
    )
    gaps = contacts.sort("customer_id", "contact_date").with_columns(
        gap=(pl.col("contact_date") - pl.col("contact_date").shift(1)).over("customer_id").dt.total_days()
    )
    assert gaps["gap"].drop_nulls().min() >= 14
    # held-out customers count for the cap above as contacted ones do, but never reach the outbox
    contacted, held_out = targets.filter(~pl.col("held_out")), targets.filter(pl.col("held_out"))
    assert held_out.height > 0 and held_out["message"].is_null().all()
    outbox = two_years.output / "outbox" / "double11-2024"
    sent = read_outbox(outbox / "targets.csv")
    assert sent.height == contacted.height == read_outbox(outbox / "targets.parquet").height
    assert sent.join(held_out, on=["customer_id", "phase"]).is_empty()
    assert "held_out" not in sent.columns
    assert contacted["message"].str.len_chars().min() > 0


def test_the_first_event_has_no_comparable_and_says_so(two_years):
    goals = table(two_years, "campaigns.goals").filter(pl.col("event_id") == "double11-2023")
    assert goals.select("measure", "basis").rows() == [("none", "none")]
    assert "no comparable event" in goals["formula"].item()


def test_an_event_with_no_orders_at_all_still_plans(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_no,buyer,paid_at,total\nA1,c1,2024-03-01 10:00:00,10\n")
    settings = file_shop(tmp_path, str(path), {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at",
                                                "amount": "total"})  # fmt: skip
    settings = settings.model_copy(update={"events": settings.events.model_copy(update={"presets": ["double11"]})})
    ingest(settings, "2024-03-01")
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CAMPAIGNS_JOB)
        assert job.execute_in_process(instance=instance, partition_key="double11-2024").success
    assert table(settings, "campaigns.goals")["basis"].to_list() == ["none"]
    assert table(settings, "outreach.campaign_targets").height == 0


def test_care_messages_follow_shipping_and_delivery_without_promotion(two_years):
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(two_years, OUTREACH_JOB)
        assert job.execute_in_process(instance=instance, partition_key="2024-06-20").success
    care = table(two_years, "outreach.care_messages").filter(pl.col("contact_date") == date(2024, 6, 20))
    with duckdb.connect(str(two_years.warehouse), read_only=True) as conn:
        shipped = conn.execute("SELECT count(*) FROM staging.orders WHERE status='completed'"
                               " AND CAST(shipped_ts AS DATE) = DATE '2024-06-20'").fetchall()[0][0]  # fmt: skip
    assert care.filter(pl.col("reason") == "shipped").height == shipped > 0
    assert set(care["reason"]) == {"shipped", "delivered", "follow_up"}
    assert not care["message"].str.contains("(?i)coupon|优惠|offer").any()


def sale(sprint_day: date, warm_up: int = 3, after_glow: int = 2) -> Event:
    return Event(f"sale-{sprint_day}", "sale", "Sale", around((sprint_day, sprint_day), 5, warm_up, after_glow))


def orders_frame(rows: list[tuple[str, str, float, int]]) -> pl.DataFrame:
    """(customer, day, amount, items) -> completed orders."""
    return pl.DataFrame(rows, schema=["customer_id", "order_date", "amount", "items"], orient="row").with_columns(
        pl.col("order_date").str.to_date(), status=pl.lit("completed")
    )


def test_the_order_value_goal_is_the_comparables_grown_by_its_own_part_of_the_spend_growth():
    then, now = sale(date(2024, 3, 10)), sale(date(2024, 9, 10))  # selling windows 03-07..03-12, 09-07..09-12
    orders = orders_frame([
        ("c1", "2024-01-10", 50, 1), ("c2", "2024-02-10", 50, 1),  # quarter before 03-02: 2 buyers, 2 orders, 100
        ("c3", "2024-03-10", 60, 2), ("c1", "2024-03-10", 40, 1),  # the comparable: c3 new, c1 returning
        ("c1", "2024-06-10", 50, 1), ("c1", "2024-07-10", 65, 1),  # quarter before 09-02: 2 buyers, 4 orders, 230
        ("c2", "2024-06-10", 50, 1), ("c2", "2024-07-10", 65, 1),
    ])  # fmt: skip
    baseline_then = pl.DataFrame({"customer_id": ["c1", "c2"], "rfm_class": ["x", "x"]})  # c1 of 2 bought: 0.5
    baseline_now = pl.DataFrame({"customer_id": ["c1", "c2", "c3"], "rfm_class": ["x", "x", "x"]})
    goals = plan_goals(now, then, orders, baseline_now, baseline_then, data_start=date(2023, 1, 1))
    goal = dict(goals.filter(pl.col("rfm_class").is_null()).select("measure", "goal").iter_rows())
    # Buyers as many (growth 1), spend per buyer 2.3x: 2x the orders per buyer and 1.15x the order value.
    assert goal["new_buyers"] == 1 and goal["returning_buyers"] == 1.5  # 3 customers x 0.5
    assert goal["revenue_new"] == pytest.approx(1 * 60 * 2.3) and goal["revenue_returning"] == pytest.approx(138)
    assert goal["orders"] == pytest.approx(2.5 * (2 / 2) * 2) and goal["items"] == pytest.approx(5 * 1.5)
    # the comparable's order value (100 / 2 orders) grown 1.15x; the revenue goals over the orders goal (276 / 5)
    # would have mixed in the shift to returning buyers, who spent 40 against 60
    assert goal["average_order_value"] == pytest.approx(50 * 1.15)
    assert goal["items_per_order"] == pytest.approx(1.5)
    # each phase likewise: the comparable's sprint sold 2 orders for 100
    phases = performance(now, then, orders, goals)[1]
    sprint = phases.filter((pl.col("dimension") == "sprint") & (pl.col("measure") == "average_order_value"))
    assert sprint["goal"].item() == pytest.approx(50 * 1.15) and sprint["comparable"].item() == 50


def test_growth_is_measured_over_equal_stretches_when_the_data_start_inside_the_trailing_quarter():
    # Data from 1 January. The comparable's build-up starts 03-02: 61 days of data before it, not 90. Two
    # customers buy 50 on the 15th of every month, and c1 buys 80 at the comparable (its sprint, 03-10).
    then, now = sale(date(2024, 3, 10)), sale(date(2024, 9, 10))
    monthly = [(c, f"2024-{month:02d}-15", 50, 1) for c in ("c1", "c2") for month in range(1, 9)]
    orders = orders_frame([*monthly, ("c1", "2024-03-10", 80, 1)])
    baseline = pl.DataFrame({"customer_id": ["c1", "c2"], "rfm_class": ["x", "x"]})

    def growth(data_start: date) -> tuple[dict, dict]:
        goals = plan_goals(now, then, orders, baseline, baseline, data_start=data_start)
        return growth_of(goals), dict(goals.filter(pl.col("rfm_class").is_null()).select("measure", "goal").rows())

    # equal stretches: 01-01..03-01 against 07-03..09-01, two buyers with two orders of 50 each in both
    inputs, goal = growth(date(2024, 1, 1))
    assert (inputs["trailing_days"], inputs["window_cut"], inputs["data_start"]) == (61, True, "2024-01-01")
    assert (inputs["orders_then"], inputs["orders_now"]) == (4, 4)
    assert inputs["buyer_growth"] == inputs["spend_growth"] == inputs["frequency_growth"] == 1.0
    # c1 of the 2 bought (rate 0.5), 2 customers now: 1 returning buyer at the comparable's 80 per buyer
    assert goal["revenue_returning"] == pytest.approx(80) and goal["orders"] == pytest.approx(1)
    # and the review says so, in either language
    english, chinese = (" ".join(growth_basis(inputs, then, TEXT[language])) for language in ("en", "zh"))
    assert "only 61 of the 90 days before Sale's build-up are known" in english and "measured over 61 days" in english
    assert "90 天中只有 61 天有数据" in chinese

    # the whole quarter before each (12-03..03-01 holds January and February only; 06-04..09-01 June to August)
    # would read 1.5x the orders per buyer and spend: the partial window's inflation
    inputs, goal = growth(date(2023, 1, 1))
    assert (inputs["trailing_days"], inputs["window_cut"]) == (90, False)
    assert inputs["frequency_growth"] == inputs["spend_growth"] == 1.5


def test_the_daily_goal_follows_the_comparable_events_weekdays():
    # A shop closed on Saturdays. Comparable: warm-up 03-06..03-19 (Wednesday to Tuesday), sprint Wednesday
    # 03-20, after-glow 03-21..03-27; this event's sprint is a Thursday, 09-19.
    then, now = sale(date(2024, 3, 20), warm_up=14, after_glow=7), sale(date(2024, 9, 19), warm_up=14, after_glow=7)
    days = pl.date_range(date(2024, 3, 6), date(2024, 3, 27), eager=True)
    orders = orders_frame([
        (f"c{i}", str(day), 100 if day == date(2024, 3, 20) else 10, 1)
        for i, day in enumerate(days) if day.isoweekday() != 6
    ])  # fmt: skip
    none = pl.DataFrame(schema={"customer_id": pl.String, "rfm_class": pl.String})
    goals = plan_goals(now, then, orders, none, none, growth_rate=0.0)
    daily = performance(now, then, orders, goals)[2].filter(pl.col("measure") == "revenue")
    goal = {date.fromisoformat(d): g for d, g in daily.select("dimension", "goal").iter_rows()}
    saturdays = [d for d in goal if d.isoweekday() == 6]
    assert saturdays == [date(2024, 9, 7), date(2024, 9, 14), date(2024, 9, 21)]
    assert all(goal[d] == 0 for d in saturdays)
    assert all(goal[d] == pytest.approx(10) for d in goal if d.isoweekday() != 6 and d != date(2024, 9, 19))
    assert goal[date(2024, 9, 19)] == pytest.approx(100)
    assert sum(goal.values()) == pytest.approx(12 * 10 + 100 + 6 * 10)  # the comparable's revenue


def test_buyers_by_class_add_up_to_the_returning_buyers():
    # Build-up 09-02..09-06, warm-up from 09-07. A is a customer at the baseline (09-02); B's first order is in
    # the build-up, after it; C's in the warm-up (new). A and B buy again in the window: both returning buyers,
    # and B, newer than the baseline, has no class there.
    event = sale(date(2024, 9, 10))
    orders = orders_frame([("A", "2024-08-01", 10, 1), ("A", "2024-09-10", 10, 1), ("B", "2024-09-04", 10, 1),
                           ("B", "2024-09-10", 10, 1), ("C", "2024-09-08", 10, 1)])  # fmt: skip
    baseline = pl.DataFrame({"customer_id": ["A"], "rfm_class": ["x"]})
    none = pl.DataFrame(schema=GOAL_SCHEMA)
    rows = class_response(event, baseline, orders, none).filter(pl.col("measure") == "buyers")
    assert dict(rows.select("dimension", "actual").rows()) == {"x": 1, BUILD_UP_NEWCOMERS: 1}
    assert rows["actual"].sum() == event_actuals(orders, event)["returning_buyers"] == 2
