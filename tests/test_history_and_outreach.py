"""Segment history, migration, reminders and messages: in process on a small synthetic shop."""

from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.customers import history, lifecycle, rfm
from assets.customers.history import STATE, empty_history, migration, rebuild_from_orders, record
from assets.customers.snapshot import customer_snapshot
from assets.customers.value import latest_fit, risk_bands, with_value_tags
from assets.outreach.reminders import reminders_for_days
from pipelines.definitions import CUSTOMERS_JOB, OUTREACH_JOB, shop_job
from pipelines.rfm_classes import CLASS_CODES, CLASSES
from pipelines.settings import RISK_BANDS, ControlSettings
from reports.messages import render_message
from tests.conftest import ingest, shop, table

FIRST, LAST = date(2024, 7, 1), date(2024, 12, 31)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    settings = shop(tmp_path_factory.mktemp("shop"), source={"kind": "synthetic", "seed": 11, "customers": 1500},
                    outreach={"opt_out": ["C0000007"], "frequency_cap_days": 10})  # fmt: skip
    ingest(settings, "2024-01-01", "2024-12-31")
    config = {
        "ops": {f"{settings.id}__customer_snapshot": {"config": {"as_of": str(LAST), "history_since": str(FIRST)}}}
    }
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CUSTOMERS_JOB)
        assert job.execute_in_process(instance=instance, run_config=config).success
    return settings


def test_migration_between_two_dates_matches_two_independent_snapshots(demo):
    history = table(demo, "core.segment_history")
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    before = customer_snapshot(orders, FIRST, demo).rfm.select("customer_id", pl.col("rfm_class").alias("from"))
    after = customer_snapshot(orders, LAST, demo).rfm.select("customer_id", pl.col("rfm_class").alias("to"))
    expected = before.join(after, on="customer_id").group_by("from", "to").len("customers").sort("from", "to")
    assert migration(history, FIRST, LAST).equals(expected)
    assert expected["customers"].sum() > 300


def test_a_stage_rule_changed_in_its_one_place_changes_the_snapshot_and_the_history(demo, monkeypatch):
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()

    def stages(day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
        snapshot = customer_snapshot(orders, day, demo).rfm.select("customer_id", "stage")
        rebuilt = rebuild_from_orders(empty_history(), orders, day, day, demo)
        return snapshot.sort("customer_id"), history.state_at(rebuilt, day).select("customer_id", "stage").sort(
            "customer_id"
        )

    snapshot, rebuilt = stages(LAST)
    assert snapshot.equals(rebuilt) and "due" in snapshot["stage"]
    # the one place: lifecycle.stage_conditions; without its "due" rule, nobody is due in either, alike
    rules = lifecycle.stage_conditions
    monkeypatch.setattr(lifecycle, "stage_conditions", lambda *args: [r for r in rules(*args) if r[0] != "due"])
    snapshot_without, rebuilt_without = stages(LAST)
    assert snapshot_without.equals(rebuilt_without) and "due" not in snapshot_without["stage"]
    # the due customers fall to the stage the rules leave them: new or active
    was_due = snapshot.filter(pl.col("stage") == "due")["customer_id"]
    assert set(snapshot_without.filter(pl.col("customer_id").is_in(was_due.implode()))["stage"]) <= {"new", "active"}


def test_an_rfm_threshold_changed_in_its_one_place_changes_the_snapshot_and_the_history(demo, monkeypatch):
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()

    def classes() -> tuple[pl.DataFrame, pl.DataFrame]:
        snapshot = customer_snapshot(orders, LAST, demo).rfm
        rebuilt = history.state_at(rebuild_from_orders(empty_history(), orders, LAST, LAST, demo), LAST)
        return snapshot.sort("customer_id"), rebuilt.select("customer_id", "rfm_class").sort("customer_id")

    snapshot, rebuilt = classes()
    assert snapshot.select("customer_id", "rfm_class").equals(rebuilt)
    # the one place: rfm.centers_of; with M high only above twice the mean spend, the snapshot and the history alike
    centers = rfm.centers_of

    def twice_the_mean_spend(counts, rules):
        found = centers(counts, rules)
        return found | {"monetary": 2 * found["monetary"]}

    monkeypatch.setattr(rfm, "centers_of", twice_the_mean_spend)
    snapshot_twice, rebuilt_twice = classes()
    assert snapshot_twice.select("customer_id", "rfm_class").equals(rebuilt_twice)
    # worked out apart: the mean spend in cents; those above it but not above twice it move to the class with M low
    mean = (snapshot["monetary"] * 100).round().sum() / snapshot.height / 100
    m_low = {code: CLASSES[r, f, False][0] for (r, f, _), (code, _) in CLASSES.items()}
    expected = snapshot.select(
        "customer_id",
        rfm_class=pl.when(pl.col("monetary").is_between(mean, 2 * mean, closed="right"))
        .then(pl.col("rfm_class").replace_strict(m_low))
        .otherwise("rfm_class"),
    )
    assert rebuilt_twice.equals(expected) and not rebuilt_twice.equals(rebuilt)


def test_history_stretches_do_not_overlap(demo):
    history = table(demo, "core.segment_history").sort("customer_id", "valid_from")
    following = history.with_columns(next_from=pl.col("valid_from").shift(-1).over("customer_id"))
    assert following.filter(pl.col("valid_to") != pl.col("next_from")).is_empty()
    assert following.filter(pl.col("valid_to").is_null())["customer_id"].n_unique() == table(demo, "core.rfm").height


def test_reminders_list_customers_entering_due_that_day(demo):
    day = "2024-12-20"
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(demo, OUTREACH_JOB)
        assert job.execute_in_process(instance=instance, partition_key=day).success
    reminders = table(demo, "outreach.repurchase_reminders")
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    rfm = customer_snapshot(orders, date(2024, 12, 20), demo).rfm
    entering = rfm.filter((pl.col("stage") == "due") & (pl.col("due_date") == date(2024, 12, 20)))["customer_id"]
    assert sorted(reminders["customer_id"]) == sorted(entering)
    assert reminders["message"].str.starts_with(f"【{demo.name}】").all()


def test_a_daily_reminder_run_reads_the_days_due_customers_from_core_rfm(demo):
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(demo, OUTREACH_JOB)
        result = job.execute_in_process(instance=instance, partition_key=str(LAST))  # core.rfm's day (the fixture)
    assert result.success
    [reminders_run] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "repurchase_reminders"
    ]
    read = reminders_run.materialization.metadata["customers_read"].value
    reminders = table(demo, "outreach.repurchase_reminders").filter(pl.col("contact_date") == LAST)
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    rfm = customer_snapshot(orders, LAST, demo).rfm  # independent: a snapshot of every customer, from the orders
    entering = rfm.filter((pl.col("stage") == "due") & (pl.col("due_date") == LAST))["customer_id"]
    # the same list as from a snapshot of everyone (less the opt-out; the last list, on the 20th, is 11 days
    # before: outside the 10-day cap), from the due customers alone
    assert sorted(reminders["customer_id"]) == sorted(set(entering) - {"C0000007"})
    assert 0 < read == len(entering) < rfm.height
    assert reminders.height > 0

    # reminders for the churn-risk bands (by the latest fit) of all but the first due customer's band: the due
    # customers' own bands, as the bands of everyone's facts give them
    fit = latest_fit(table(demo, "core.model_fits"), LAST)
    bands = risk_bands(customer_snapshot(orders, LAST, demo).facts, fit, demo.value)
    left_out = bands.filter(pl.col("customer_id") == sorted(entering)[0])["risk_band"].item()
    allowed = [band for band in RISK_BANDS if band != left_out]
    banded = demo.model_copy(update={"value": demo.value.model_copy(update={"remind_risk_bands": allowed})})
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(banded, OUTREACH_JOB).execute_in_process(instance=instance, partition_key=str(LAST)).success
    reminded = table(demo, "outreach.repurchase_reminders").filter(pl.col("contact_date") == LAST)["customer_id"]
    in_bands = bands.filter(pl.col("risk_band").is_in(allowed))["customer_id"]
    assert sorted(reminded) == sorted(set(entering) & set(in_bands) - {"C0000007"})
    assert sorted(entering)[0] not in set(reminded)


def fake_snapshots(due: dict[date, list[str]]):
    def snapshot_on(day):
        ids = due.get(day, [])
        rfm = pl.DataFrame({"customer_id": ids, "stage": ["due"] * len(ids), "due_date": [day] * len(ids),
                            "rfm_class": ["new"] * len(ids), "rfm_class_zh": ["新客户"] * len(ids),
                            "expected_next_date": [day] * len(ids)},
                           schema_overrides={"due_date": pl.Date, "expected_next_date": pl.Date})  # fmt: skip
        facts = pl.DataFrame(
            {"customer_id": ids, "main_category": ["tea"] * len(ids), "first_channel": ["sms"] * len(ids)}
        )
        return facts.cast({"customer_id": pl.String}), rfm.cast({"customer_id": pl.String})

    return snapshot_on


def test_opt_outs_and_the_frequency_cap_hold_across_days_and_lists():
    d1, d2, d3 = date(2024, 5, 1), date(2024, 5, 5), date(2024, 5, 9)
    earlier_campaign = pl.DataFrame({"customer_id": ["x"], "contact_date": [date(2024, 4, 28)]})
    chosen = reminders_for_days(
        fake_snapshots({d1: ["a", "x", "out"], d2: ["a", "b"], d3: ["a", "x"]}), [d3, d1, d2],
        opted_out=pl.col("customer_id").is_in(["out"]), contacts=earlier_campaign, cap_days=7, shop="S", language="en",
        control=ControlSettings(),
    )  # fmt: skip
    # a: 1 May, not 5 May (4 days later), again 9 May (8 days later); x: contacted 28 April, so not
    # 1 May, but 9 May; b: 5 May; "out" never.
    assert sorted(chosen.select("customer_id", "contact_date").rows()) == [
        ("a", d1),
        ("a", d3),
        ("b", d2),
        ("x", d3),
    ]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_every_class_has_a_message_in_both_languages(language):
    for code in CLASS_CODES:
        text = render_message(
            "repurchase", language, code, shop="S", category="tea", expected_next_date=date(2024, 1, 2)
        )
        assert "tea" in text and "{{" not in text


def test_a_class_without_a_message_is_an_error_not_a_blank():
    with pytest.raises(KeyError, match="no message for 'vip'"):
        render_message("repurchase", "en", "vip", shop="S", category="tea", expected_next_date=date(2024, 1, 2))


@pytest.mark.parametrize(
    "rules",
    [{}, {"rfm": {"threshold": "fixed", "active_window_days": {"apparel": 120}, "same_day_orders_once": False,
                  "monetary_measure": "average"}},
     {"rfm": {"threshold": "median"}, "lifecycle": {"due_from": 0.8}}],
)  # fmt: skip
def test_a_rebuilt_history_equals_one_built_day_by_day(demo, rules, monkeypatch):
    settings = demo.model_copy(update={name: type(getattr(demo, name))(**value) for name, value in rules.items()})
    with duckdb.connect(str(demo.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    first, middle, last = date(2024, 9, 1), date(2024, 10, 20), date(2024, 11, 30)
    day_by_day, weekly = empty_history(), empty_history()
    for day in pl.date_range(first, last, eager=True):
        state = customer_snapshot(orders, day, settings).rfm.select("customer_id", *STATE, "expected_next_date")
        day_by_day = record(day_by_day, state, day)
        if (day - first).days % 7 == 0 or day == last:
            weekly = record(weekly, state, day)
        if day == middle:
            until_middle = day_by_day
    day_by_day = day_by_day.sort("customer_id", "valid_from")
    assert rebuild_from_orders(empty_history(), orders, first, last, settings).equals(day_by_day)
    # from the middle on, on top of the history recorded until then
    assert rebuild_from_orders(until_middle, orders, middle, last, settings).equals(day_by_day)
    # a state every 7 days, as a range run records by default
    assert rebuild_from_orders(empty_history(), orders, first, last, settings, 7).equals(
        weekly.sort("customer_id", "valid_from")
    )
    assert day_by_day.filter(pl.col("valid_from") > first).height > 100  # customers do move
    # the customers in many pieces end to end (episodes, classification, stretches), as at millions of customers;
    # the stretches recorded until the middle split among the pieces by id
    monkeypatch.setattr(history, "PIECE", 97)
    assert rebuild_from_orders(empty_history(), orders, first, last, settings).equals(day_by_day)
    assert rebuild_from_orders(until_middle, orders, middle, last, settings).equals(day_by_day)


def test_a_daily_run_after_yesterdays_gives_what_a_full_run_gives(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-01-01", "2024-12-31")
    job = shop_job(settings, CUSTOMERS_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        for day in ("2024-12-30", "2024-12-31"):  # the second starts from the first's facts
            config = {"ops": {f"{settings.id}__customer_snapshot": {"config": {"as_of": day}}}}
            assert job.execute_in_process(instance=instance, run_config=config).success
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    full = customer_snapshot(orders, LAST, settings)
    assert table(settings, "core.customer_facts").equals(full.facts.sort(pl.all()))
    # the day's targeting tags carry high_value_at_risk by the fit before it: the day before's
    fit = latest_fit(table(settings, "core.model_fits").filter(pl.col("fit_date") < LAST), LAST)
    assert fit["fit_date"] == LAST - timedelta(days=1)
    assert table(settings, "core.rfm").equals(with_value_tags(full.facts, full.rfm, fit, settings.value).sort(pl.all()))
    assert orders.filter(pl.col("order_date") == LAST).height > 0


def test_a_history_rebuilt_before_anyone_bought_twice_uses_the_default_cycle(tmp_path):
    settings = shop(tmp_path)
    orders = pl.DataFrame({
        "order_id": ["O1", "O2"], "customer_id": ["a", "b"], "order_date": [date(2024, 1, 1), date(2024, 2, 1)],
        "amount": [10.0, 20.0], "items": [1, 1], "channel": ["app", "web"], "region": ["Zhejiang"] * 2,
        "category": ["tea", None], "status": ["completed"] * 2,
    }).with_columns(order_ts=pl.col("order_date").cast(pl.Datetime))  # fmt: skip
    history = rebuild_from_orders(empty_history(), orders, date(2024, 1, 1), date(2024, 4, 1), settings)
    # a: new, due from 0.9 x 60 = 54 days (2024-02-24), at risk beyond 90 days (2024-03-31 is day 90)
    assert history.filter(pl.col("customer_id") == "a").select("stage", "valid_from").rows() == [
        ("new", date(2024, 1, 1)),
        ("due", date(2024, 2, 24)),
        ("at_risk", date(2024, 4, 1)),
    ]
