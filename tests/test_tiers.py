"""Member tiers (issue 30): earned by R, F and M together, day by day, downgrades only after the grace period."""

import re
from datetime import date

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.customers import TIER_HISTORY
from assets.customers.tiers import (
    tier_history,
    tier_migration,
    tiers_on,
    with_tier_on,
)
from checks.tiers import early_downgrades, stretch_gaps
from pipelines.calendar import Event, around
from pipelines.definitions import CAMPAIGNS_JOB, CUSTOMERS_JOB, REPORTS_JOB, REVIEW_JOB, shop_job
from pipelines.settings import ReportSettings, SettingsError
from reports.messages import render_message
from reports.tiers import JOINED, month_ends, tier_migration_section, tier_mix_section
from reports.translations import TEXT
from tests.conftest import ROOT, ingest, shop, table

MEMBER = {"id": "member", "name": {"zh": "普通会员", "en": "Member"}}
GOLD = {
    "id": "gold", "name": {"zh": "黄金会员", "en": "Gold"}, "benefit": {"zh": "全场包邮", "en": "free shipping"},
    "entry": {"min_frequency": 2, "max_recency_days": 30}, "keep": {"max_recency_days": 60}, "grace_days": 10,
}  # fmt: skip


def orders_of(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    """(customer, day, amount) -> completed orders as staging.orders holds them."""
    return pl.DataFrame(rows, schema=["customer_id", "order_date", "amount"], orient="row").with_columns(
        pl.col("order_date").str.to_date(),
        order_ts=pl.col("order_date").str.to_datetime() + pl.duration(hours=12),
        items=pl.lit(1), channel=pl.lit("app"), region=pl.lit(None, pl.String), category=pl.lit("tea"),
        status=pl.lit("completed"),
    )  # fmt: skip


@pytest.fixture
def ladder(tmp_path):
    return shop(tmp_path, tiers=[MEMBER, GOLD])


def test_an_upgrade_comes_on_the_day_of_the_qualifying_order_and_a_downgrade_only_after_the_grace_period(ladder):
    orders = orders_of([
        ("a", "2024-01-01", 100), ("a", "2024-01-11", 100),  # a: second order on 01-11 -> gold that day
        ("b", "2024-01-01", 100),  # b: one order, a member throughout
        ("c", "2024-01-01", 100), ("c", "2024-01-05", 100), ("c", "2024-03-10", 100),  # c: back inside the grace
    ])  # fmt: skip
    history = tier_history(orders, date(2024, 3, 31), ladder)
    rows = {c: history.filter(pl.col("customer_id") == c).drop("customer_id").rows() for c in "abc"}
    d = date
    # a: gold from 01-11 (F = 2, R = 0); keep (R <= 60) fails first at R = 61 on 03-12 (2024 is a leap year:
    # 20 days left of January, 29 of February, 12 of March); 10 days of grace: gold through 03-21, member on 03-22
    assert rows["a"] == [
        ("member", None, d(2024, 1, 1), d(2024, 1, 11)),
        ("gold", None, d(2024, 1, 11), d(2024, 3, 12)),
        ("gold", d(2024, 3, 12), d(2024, 3, 12), d(2024, 3, 22)),
        ("member", None, d(2024, 3, 22), None),
    ]
    assert rows["b"] == [("member", None, d(2024, 1, 1), None)]
    # c: gold from 01-05; R = 61 on 03-06 starts the grace; the order of 03-10 (4 days in) keeps gold, grace over
    assert rows["c"] == [
        ("member", None, d(2024, 1, 1), d(2024, 1, 5)),
        ("gold", None, d(2024, 1, 5), d(2024, 3, 6)),
        ("gold", d(2024, 3, 6), d(2024, 3, 6), d(2024, 3, 10)),
        ("gold", None, d(2024, 3, 10), None),
    ]
    on = {day: dict(tiers_on(history, day).rows()) for day in (d(2024, 3, 21), d(2024, 3, 22))}
    assert on[d(2024, 3, 21)]["a"] == "gold" and on[d(2024, 3, 22)]["a"] == "member"
    # the checks the asset runs find nothing wrong here
    assert stretch_gaps(history).is_empty() and early_downgrades(history, ladder.tiers).is_empty()


def test_with_a_look_back_window_the_tiers_come_from_a_snapshot_a_day_and_agree(tmp_path, ladder):
    # a 400-day window holds all of these orders: F and M are the whole history's, so the snapshots' tiers are the
    # episodes' (the hand-worked ones above); a 30-day window forgets a's first order by 02-01 (F = 1)
    orders = orders_of([("a", "2024-01-01", 100), ("a", "2024-01-11", 100), ("b", "2024-01-01", 100)])
    windowed = shop(tmp_path / "w", tiers=[MEMBER, GOLD], rfm={"lookback_days": 400})
    expected = tier_history(orders, date(2024, 3, 31), ladder)
    assert tier_history(orders, date(2024, 3, 31), windowed).equals(expected)
    assert expected.filter(pl.col("customer_id") == "a")["tier"].to_list() == ["member", "gold", "gold", "member"]
    short = shop(tmp_path / "s", tiers=[MEMBER, GOLD | {"keep": {"min_frequency": 2}}], rfm={"lookback_days": 30})
    # the window ends its 30 days on 01-30 for the order of 01-01 (F = 1 from 01-31): grace from 01-31, 10 days
    rows = tier_history(orders, date(2024, 3, 31), short).filter(pl.col("customer_id") == "a")
    assert rows.select("tier", "valid_from").rows() == [
        ("member", date(2024, 1, 1)), ("gold", date(2024, 1, 11)), ("gold", date(2024, 1, 31)),
        ("member", date(2024, 2, 10)),
    ]  # fmt: skip


def test_points_count_r_f_and_m_together(tmp_path):
    # points = 100 * F + 1 * M - 10 * R; vip needs 500. One order of 350 and one of 60 ten days later: F = 2,
    # M = 410, R = 0 -> 610 on 01-11; each idle day costs 10: below 500 at R = 12 (490) on 01-23, no grace
    vip = {"id": "vip", "name": {"zh": "贵宾", "en": "VIP"}, "entry": {"min_points": 500}}
    settings = shop(tmp_path, tiers=[MEMBER, vip], tier_points={"per_order": 100, "per_spend": 1, "per_idle_day": 10})
    history = tier_history(orders_of([("a", "2024-01-01", 350), ("a", "2024-01-11", 60)]), date(2024, 2, 1), settings)
    assert history.select("tier", "valid_from").rows() == [
        ("member", date(2024, 1, 1)), ("vip", date(2024, 1, 11)), ("member", date(2024, 1, 23))
    ]  # fmt: skip


def test_the_checks_find_a_downgrade_inside_the_grace_period_and_a_gap(ladder):
    history = pl.DataFrame(
        {"customer_id": ["a", "a", "a"], "tier": ["gold", "gold", "member"],
         "grace_from": [None, date(2024, 3, 12), None],
         "valid_from": [date(2024, 1, 11), date(2024, 3, 12), date(2024, 3, 20)],  # 8 days of 10
         "valid_to": [date(2024, 3, 12), date(2024, 3, 19), None]},  # and a day (03-19) in no tier
    )  # fmt: skip
    assert early_downgrades(history, ladder.tiers).rows() == [("a", "gold", date(2024, 3, 12), date(2024, 3, 20))]
    assert stretch_gaps(history)["valid_from"].to_list() == [date(2024, 3, 12)]


def test_migration_counts_add_up_to_the_members(ladder):
    orders = orders_of([
        ("a", "2024-01-01", 100), ("a", "2024-01-11", 100),  # gold on 03-01 (R = 50 <= 60), member on 03-31
        ("b", "2024-01-01", 100),  # member both days
        ("c", "2024-03-20", 100),  # not a member on 03-01: joined in between
    ])  # fmt: skip
    history = tier_history(orders, date(2024, 3, 31), ladder)
    moves = tier_migration(history, date(2024, 3, 1), date(2024, 3, 31))
    assert moves.rows() == [(None, "member", 1), ("gold", "member", 1), ("member", "member", 1)]
    assert moves["customers"].sum() == tiers_on(history, date(2024, 3, 31)).height == 3


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ([MEMBER, GOLD | {"entry": {"min_orderz": 2}}], "tiers.gold.entry.min_orderz: not a setting"),
        ([MEMBER, GOLD | {"grace_days": "a month"}], "tiers.gold.grace_days: Input should be a valid integer"),
        ([MEMBER, GOLD | {"name": {"zh": "黄金会员"}}], "tiers.gold.name.en: required, but missing"),
        ([MEMBER | {"entry": {"min_frequency": 1}}, GOLD], "the first tier (member) is every buyer's"),
        ([MEMBER, GOLD, GOLD], "gold is used twice"),
    ],
)
def test_a_wrong_tier_setting_is_refused_naming_the_tier_and_the_field(tmp_path, tiers, expected):
    with pytest.raises(SettingsError, match="tiers") as refused:
        shop(tmp_path, tiers=tiers)
    assert expected in str(refused.value)


def test_the_overview_counts_members_per_tier_at_each_months_end_and_the_review_adds_up(ladder):
    orders = orders_of([
        ("a", "2024-01-01", 100), ("a", "2024-01-11", 100),  # gold from 01-11, in grace from 03-12 to 03-21
        ("b", "2024-01-01", 100),  # member from 01-01
        ("c", "2024-02-20", 100),  # member from 02-20
    ])  # fmt: skip
    history = tier_history(orders, date(2024, 3, 31), ladder)
    assert month_ends(date(2024, 1, 15), date(2024, 3, 20)) == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 20)]
    # a: gold through 03-21 (grace from 03-12), so gold at each of the three days
    section = tier_mix_section(history, ladder.tiers, date(2024, 1, 1), date(2024, 3, 20), "zh")
    assert [(row["name"], row["start"], row["end"]) for row in section["rows"]] == [
        ("普通会员", 1, 2),
        ("黄金会员", 1, 1),
    ]
    assert section["rows"][1]["benefit"] == "全场包邮"
    event = Event("sale", "sale", "Sale", around((date(2024, 3, 1), date(2024, 3, 1)), 25, 3, 20))  # 02-02 .. 03-21
    moves = tier_migration_section(history, ladder.tiers, event, "en")
    # on 02-02: a gold, b member, c not yet; on 03-21: a gold (last day of grace), b and c members
    assert moves["cells"] == {("gold", "gold"): 1, ("member", "member"): 1, (JOINED, "member"): 1}
    assert sum(moves["row_totals"].values()) == moves["total"] == 3
    assert tier_mix_section(history, [], date(2024, 1, 1), date(2024, 3, 20), "en") is None


def test_a_message_names_the_customers_tier_that_day_and_its_benefit(ladder):
    history = tier_history(orders_of([("a", "2024-01-01", 100), ("a", "2024-01-11", 100)]), date(2024, 3, 31), ladder)
    days = [date(2024, 1, 10), date(2024, 1, 11), date(2024, 1, 11)]
    rows = pl.DataFrame({"customer_id": ["a", "a", "b"], "contact_date": days})
    tiered = with_tier_on(rows, history, "contact_date")
    assert tiered["tier"].to_list() == ["member", "gold", None]  # gold from the day of the second order; b unknown
    members = {tier.id: tier for tier in ladder.tiers}
    values = {"shop": "莲花茶铺", "category": None, "expected_next_date": None}
    plain = render_message("repurchase", "zh", "new", **values)
    assert (
        render_message("repurchase", "zh", "new", member=members["gold"], **values)
        == plain + "黄金会员专享：全场包邮。"
    )
    english = render_message("repurchase", "en", "new", member=members["gold"], **values | {"shop": "Lotus Tea"})
    assert english.endswith("your second order comes with a small thank-you. Gold benefit: free shipping.")
    # a tier without a benefit is named alone
    assert render_message("repurchase", "en", "new", member=members["member"], **values).endswith(
        "Your member tier: Member."
    )


@pytest.fixture(scope="module")
def tiered_shop(tmp_path_factory):
    """A small synthetic shop over 2024 with the demo shop's ladder: customers made, Double 11 planned and
    reviewed; the customers run's check evaluations."""
    demo = yaml.safe_load((ROOT / "shop.yaml").read_text(encoding="utf-8"))
    settings = shop(tmp_path_factory.mktemp("tiers"), tiers=demo["tiers"], tier_points=demo["tier_points"],
                    source={"kind": "synthetic", "seed": 7, "customers": 600})  # fmt: skip
    ingest(settings, "2024-01-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        customers = shop_job(settings, CUSTOMERS_JOB).execute_in_process(instance=instance)
        campaign = shop_job(settings, CAMPAIGNS_JOB).execute_in_process(instance=instance, partition_key=EVENT)
        assert customers.success and campaign.success
    return settings, customers.get_asset_check_evaluations()


EVENT = "double11-2024"


def holds(rule: dict | None, row: dict, points: dict) -> bool:
    """A rule of the settings file against a core.rfm row, written out again here (not the ladder's code)."""
    rule = rule or {}
    earned = (points["per_order"] * row["frequency"] + points["per_spend"] * row["monetary"]
              - points["per_idle_day"] * row["recency_days"])  # fmt: skip
    return (
        row["recency_days"] <= rule.get("max_recency_days", float("inf"))
        and row["frequency"] >= rule.get("min_frequency", 0)
        and row["monetary"] >= rule.get("min_monetary", float("-inf"))
        and earned >= rule.get("min_points", float("-inf"))
    )


def test_the_tier_asset_passes_its_checks_and_agrees_with_the_snapshots_r_f_and_m(tiered_shop):
    settings, checks = tiered_shop
    tier_checks = {c.check_name: c.passed for c in checks if c.asset_key == settings.key(TIER_HISTORY)}
    assert tier_checks == {"one_tier_a_day": True, "no_downgrade_before_grace_ends": True}
    history, rfm = table(settings, "core.tier_history"), table(settings, "core.rfm")
    assert history.filter(pl.col("valid_to").is_null()).height == rfm.height  # every customer has one tier now
    ladder = [tier.model_dump(exclude_none=True) for tier in settings.tiers]
    points = settings.tier_points.model_dump()
    rank = {tier["id"]: n for n, tier in enumerate(ladder)}
    current = history.filter(pl.col("valid_to").is_null() & pl.col("grace_from").is_null())
    for row in current.join(rfm, on="customer_id").iter_rows(named=True):
        tier = ladder[rank[row["tier"]]]
        # out of grace, a member meets their tier's keep (or entry) rule by core.rfm's values, and no higher entry
        assert holds(tier.get("keep", tier.get("entry")), row, points) or holds(tier.get("entry"), row, points)
        assert not any(holds(higher.get("entry"), row, points) for higher in ladder[rank[row["tier"]] + 1 :])
    assert set(current["tier"]) == set(rank)  # the small shop reaches every tier of the demo ladder


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_review_and_the_overview_show_the_tiers_in_both_languages(tiered_shop, language):
    settings, _ = tiered_shop
    settings = settings.model_copy(
        update={"reports": ReportSettings(language=language), "output": settings.output / language}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, REPORTS_JOB).execute_in_process(instance=instance).success
        review_job = shop_job(settings, REVIEW_JOB)
        assert review_job.execute_in_process(instance=instance, partition_key=EVENT).success
    event = next(e for e in settings.calendar() if e.id == EVENT)
    members = tiers_on(table(settings, "core.tier_history"), event.end).height
    review = (settings.output / "reports" / f"review-{EVENT}.{language}.html").read_text(encoding="utf-8")
    overview = next((settings.output / "reports").glob(f"overview-*.{language}.html")).read_text(encoding="utf-8")
    title, gold, total = {"en": ("Tier migration", "Gold", f"{members:,} members"),
                          "zh": ("会员等级迁移", "黄金会员", f"共有会员 {members:,} 人")}[language]  # fmt: skip
    assert title in review and total in review and gold in review
    # the matrix's cells add up to the members at the after-glow's end
    matrix = review[review.index('class="tier-migration"') :].split("</table>")[0]
    rows = [re.findall(r'<td class="n">([\d,]+)</td>', row) for row in matrix.split("<tr>")[2:]]
    assert sum(int(cells[-1].replace(",", "")) for cells in rows) == members
    assert sum(int(c.replace(",", "")) for cells in rows for c in cells[:-1]) == members
    assert TEXT[language]["member_tiers"] in overview and gold in overview
