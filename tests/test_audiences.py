"""Audiences a shop defines (人群圈选) and offers by product role (#30): settings refused before anything runs,
members against an independent filter of the warehouse, offers worked by hand, response by offer kind."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.campaigns.results import outreach_results
from assets.outreach.audiences import audience_filter, customer_table
from assets.outreach.offers import with_offers
from pipelines.definitions import (
    CAMPAIGNS_JOB,
    CUSTOMERS_JOB,
    OUTREACH_JOB,
    REPORTS_JOB,
    REVIEW_JOB,
    build_definitions,
    job_name,
)
from pipelines.settings import AUDIENCE_FIELDS, Audience, OfferSettings, OutreachSettings, ReportSettings, SettingsError
from reports.translations import OFFER_NAMES, TEXT
from tests.conftest import ingest, read_outbox, shop, table

EXAMPLE = {"rfm_class": "important_winback", "p_alive": {"gt": 0.3}, "main_category": "beauty",
           "days_since_contact": {"ge": 14}}  # fmt: skip


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({**EXAMPLE, "p_alve": {"gt": 0.3}},
         "audience 'beauty_winback', field 'p_alve': not a field; did you mean 'p_alive'?"),
        ({**EXAMPLE, "p_alive": {"gt": "high"}},
         "audience 'beauty_winback', field 'p_alive': expected a number, found 'high'"),
        ({**EXAMPLE, "rfm_class": "important_winbak"}, "field 'rfm_class': unknown value 'important_winbak'"),
        ({**EXAMPLE, "main_category": 3}, "audience 'beauty_winback', field 'main_category': expected text, found 3"),
        ({**EXAMPLE, "p_alive": {"above": 0.3}}, "field 'p_alive': unknown condition 'above' for a number field"),
        ({"acquired_on_event": "yes"}, "field 'acquired_on_event': expected true or false, found 'yes'"),
        ({"tags": ["promotion_sensitive", 3]}, "field 'tags': expected a tag (or a list of them)"),
    ],
)  # fmt: skip
def test_an_audience_with_a_wrong_field_or_type_is_refused_with_its_name(tmp_path, where, message):
    with pytest.raises(SettingsError) as error:
        shop(tmp_path, audiences={"beauty_winback": {"where": where}})
    assert "audiences: " in str(error.value) and message in str(error.value)


def test_an_event_plan_may_name_the_shops_own_audiences_and_no_unknown_one(tmp_path):
    plan = {"warm_up": ["beauty_winback", "important_retain"]}
    settings = shop(tmp_path, audiences={"beauty_winback": {"where": EXAMPLE}}, events={"plan": plan})
    assert settings.events.plan["warm_up"] == ["beauty_winback", "important_retain"]
    with pytest.raises(SettingsError, match="events.plan.warm_up: unknown audience 'beauty_winbak'"):
        shop(
            tmp_path, audiences={"beauty_winback": {"where": EXAMPLE}}, events={"plan": {"warm_up": ["beauty_winbak"]}}
        )
    with pytest.raises(SettingsError, match="audience 'lost': expected a name"):  # a class's name is taken
        shop(tmp_path, audiences={"lost": {"where": EXAMPLE}})


def test_the_issues_example_picks_by_hand_the_customers_that_meet_every_condition():
    table = pl.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "rfm_class": ["important_winback", "important_winback", "important_winback", "important_winback", "lost",
                      "important_winback"],
        "p_alive": [0.45, 0.30, 0.9, 0.5, 0.8, None],
        "main_category": ["beauty", "beauty", "beauty", "snacks", "beauty", "beauty"],
        "days_since_contact": [30, 40, 13, 50, 60, 100],
        "tags": [["promotion_sensitive"], [], ["x"], [], [], []],
    })  # fmt: skip
    # a: meets all four; b: P(alive) 0.30 is not above 0.3; c: contacted 13 days ago; d: snacks; e: lost;
    # f: no P(alive) (no fit), which meets no condition on it
    picked = table.filter(audience_filter(Audience(where=EXAMPLE)))["customer_id"].to_list()
    assert picked == ["a"]
    tagged = Audience(where={"tags": "promotion_sensitive", "days_since_contact": {"ge": 14}})
    assert table.filter(audience_filter(tagged))["customer_id"].to_list() == ["a"]
    not_tagged = Audience(where={"tags": {"has_not": ["promotion_sensitive", "x"]}, "rfm_class": ["lost"]})
    assert table.filter(audience_filter(not_tagged))["customer_id"].to_list() == ["e"]


# Products of a shop and their roles (analysis.product_roles with each product's category), worked by hand below.
ROLES = pl.DataFrame({
    "item": ["A1", "A2", "A3", "A4", "B1", "B2"],
    "name": ["A1", "A2", "A3", "A4", "B1", "B2"],
    "category": ["beauty", "beauty", "beauty", "beauty", "snacks", "snacks"],
    "role": ["traffic", "marginal", "profit", "profit", "traffic", "profit"],
    "first_order_share": [0.5, 0.1, 0.1, 0.05, 0.6, 0.1],
    "returning_order_share": [0.1, 0.1, 0.4, 0.2, 0.1, 0.3],
})  # fmt: skip


def test_a_churned_one_time_buyer_gets_traffic_products_and_a_repeat_customer_profit_ones_at_a_small_discount():
    customers = pl.DataFrame({
        "customer_id": ["churned_once", "repeat", "churned_repeat", "new_once"],
        "stage": ["churned", "active", "churned", "new"],
        "purchase_days": [1, 3, 4, 1],
        "main_category": ["beauty", "beauty", "snacks", None],
    })  # fmt: skip
    offers = with_offers(customers.select("customer_id"), customers, ROLES, OfferSettings(products=3))
    got = {row["customer_id"]: (row["offer_kind"], row["offer_discount"], row["suggested_products"])
           for row in offers.iter_rows(named=True)}  # fmt: skip
    # churned one-time buyer of beauty: beauty's traffic product A1, its marginal A2, then the shop's other
    # traffic product B1; at the deal discount (20% by default)
    assert got["churned_once"] == ("traffic_deal", 0.2, "A1; A2; B1")
    # repeat customer of beauty: beauty's profit products by returning customers' share (A3 0.4, A4 0.2), then
    # the shop's other profit product B2; at the small discount (5%)
    assert got["repeat"] == ("profit_discount", 0.05, "A3; A4; B2")
    # churned (though repeat) customer of snacks: a deal, snacks' traffic B1, then traffic A1 before marginal A2
    assert got["churned_repeat"] == ("traffic_deal", 0.2, "B1; A1; A2")
    # a one-time buyer without a main category: the shop's traffic products by first-order share, then marginal
    assert got["new_once"] == ("traffic_deal", 0.2, "B1; A1; A2")


def test_response_by_offer_kind_adds_up_to_the_lists_response():
    # One list of eight: four offered a deal (three contacted, one held out), four a small discount (likewise).
    # In the window: deal c1 bought (1 of 3 contacted, 0 of 1 held out); discount c5 and c6 (2 of 3) and the
    # held-out c8 (1 of 1). The list: 3 of 6 contacted bought (0.5), 1 of 2 held out (0.5).
    ids = [f"c{n}" for n in range(1, 9)]
    targets = pl.DataFrame({
        "event_id": "e", "phase": "warm_up", "contact_date": date(2024, 11, 1), "customer_id": ids,
        "audience": "important_winback", "channel": "app",
        "held_out": [False, False, False, True, False, False, False, True],
        "offer_kind": ["traffic_deal"] * 4 + ["profit_discount"] * 4,
    })  # fmt: skip
    orders = pl.DataFrame({"customer_id": ["c1", "c5", "c6", "c8"], "order_date": date(2024, 11, 3),
                           "amount": [100.0, 50.0, 70.0, 20.0], "status": "completed"})  # fmt: skip
    results = outreach_results("e", targets, orders, date(2024, 11, 30), OutreachSettings(control={"min_list_size": 1}))
    value = {(r["dimension"], r["detail"], r["measure"]): r["actual"] for r in results.iter_rows(named=True)}
    deal, discount, whole = ("offer", "traffic_deal"), ("offer", "profit_discount"), ("all", None)
    assert [value[(*deal, "buyers_contacted")], value[(*discount, "buyers_contacted")]] == [1, 2]
    assert value[(*deal, "response_contacted")] == pytest.approx(1 / 3)
    assert value[(*discount, "response_contacted")] == pytest.approx(2 / 3)
    assert value[(*discount, "response_held_out")] == 1 and value[(*deal, "response_held_out")] == 0
    for measure in ("contacted", "held_out", "buyers_contacted", "buyers_held_out"):
        assert value[(*deal, measure)] + value[(*discount, measure)] == value[(*whole, measure)]
    # the list's response is the kinds' weighted by their contacted: (3 x 1/3 + 3 x 2/3) / 6 = 0.5
    assert value[(*whole, "response_contacted")] == pytest.approx(0.5)


SLIPPING = {"stage": ["at_risk", "churned"], "p_alive": {"gt": 0.3}, "days_since_contact": {"ge": 14}}
LOYAL_BEAUTY = {"main_category": "beauty", "purchase_days": {"ge": 2}}
OPTED_OUT = ["C0000003", "C0000004"]  # both slipping in this shop on 2024-12-31 without their opt-outs


@pytest.fixture(scope="module")
def own_audiences(tmp_path_factory):
    """A small shop with a daily audience (slipping away) and one for Double 11's warm-up (loyal beauty buyers),
    customers, reminders and lists for December, Double 11 planned and reviewed; small lists hold out too."""
    settings = shop(
        tmp_path_factory.mktemp("audiences"), source={"kind": "synthetic", "seed": 7, "customers": 600},
        audiences={"slipping": {"label": "流失边缘客户", "daily": True, "where": SLIPPING},
                   "loyal_beauty": {"label": "美妆回头客", "where": LOYAL_BEAUTY}},
        events={"plan": {"warm_up": ["loyal_beauty", "important_winback"], "sprint": ["engaged"],
                         "after_glow": ["missed", "new_buyers"]},
                # its warm-up list, for 2025-01-01, is planned after the audience list of 2024-12-31
                "custom": [{"id": "new-year-2025", "sprint": ["2025-01-08", "2025-01-10"], "warm_up_days": 7}]},
        outreach={"opt_out": OPTED_OUT, "control": {"min_list_size": 10}},
    )  # fmt: skip
    ingest(settings, "2024-01-01", "2024-12-31")
    defs = build_definitions(settings)
    tags = {"dagster/asset_partition_range_start": "2024-12-01", "dagster/asset_partition_range_end": "2024-12-31"}
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def(job_name(settings, CUSTOMERS_JOB)).execute_in_process(instance=instance).success
        outreach = defs.resolve_job_def(job_name(settings, OUTREACH_JOB))
        assert outreach.execute_in_process(instance=instance, tags=tags).success
        campaigns = defs.resolve_job_def(job_name(settings, CAMPAIGNS_JOB))
        for event in ("double11-2024", "new-year-2025"):
            assert campaigns.execute_in_process(instance=instance, partition_key=event).success
    return settings


def test_a_daily_audiences_members_equal_an_independent_filter_of_the_warehouse(own_audiences):
    settings, day = own_audiences, date(2024, 12, 31)
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        expected = conn.sql(
            """WITH contacts AS (SELECT customer_id, contact_date FROM outreach.repurchase_reminders
                                 UNION ALL SELECT customer_id, contact_date FROM outreach.campaign_targets),
                    last AS (SELECT customer_id, max(contact_date) AS contacted FROM contacts
                             WHERE contact_date < $day GROUP BY ALL)
               SELECT customer_id FROM core.customer_facts f JOIN core.rfm r USING (customer_id)
               JOIN core.customer_value v USING (customer_id) LEFT JOIN last USING (customer_id)
               WHERE r.stage IN ('at_risk', 'churned') AND v.p_alive > 0.3
                 AND date_diff('day', coalesce(last.contacted, f.first_order_date), $day) >= 14
                 AND customer_id NOT IN (SELECT customer_id FROM contacts
                                         WHERE abs(date_diff('day', contact_date, $day)) < $cap)
                 AND customer_id NOT IN (SELECT unnest($opted))""",
            params={"day": day, "cap": settings.outreach.frequency_cap_days, "opted": OPTED_OUT},
        ).pl()
        as_of = conn.sql("SELECT max(as_of_date) FROM core.customer_facts").fetchall()[0][0]
    assert as_of == day
    listed = table(settings, "outreach.audience_lists")
    assert set(listed["contact_date"]) == {day} and set(listed["audience"]) == {"slipping"}
    assert expected.height >= 50  # enough members for the comparison to mean something
    assert sorted(listed["customer_id"]) == sorted(expected["customer_id"])
    assert 0 < listed["held_out"].sum() < listed.height
    # the outbox has the contacted ones, with their offer, as the warehouse has them
    sent = read_outbox(settings.output / "outbox" / "audiences" / "slipping" / f"slipping-{day}.csv")
    contacted = listed.filter(~pl.col("held_out")).drop("held_out")
    assert sorted(sent["customer_id"]) == sorted(contacted["customer_id"])
    offer = ["customer_id", "offer_kind", "suggested_products", "message"]
    assert sent.select(offer).sort("customer_id").equals(contacted.select(offer).sort("customer_id"))
    assert set(sent["audience"]) == {"流失边缘客户"}  # the audience's label, in the outreach language


def test_an_event_phase_lists_the_shops_own_audience_as_a_filter_of_its_baseline(own_audiences):
    settings = own_audiences
    targets = table(settings, "outreach.campaign_targets").filter(
        (pl.col("event_id") == "double11-2024") & (pl.col("audience") == "loyal_beauty")
    )
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        # at the baseline, frequency is purchase days (same-day orders once, whole history) and the main category a
        # tag; no other list is within the cap of the warm-up (reminders start in December)
        expected = conn.sql(
            "SELECT customer_id FROM campaigns.baselines WHERE event_id = 'double11-2024' AND frequency >= 2"
            " AND list_contains(string_split(tags, ';'), 'category:beauty') AND customer_id NOT IN (SELECT unnest(?))",
            params=[OPTED_OUT],
        ).pl()
    assert expected.height >= 10 and sorted(targets["customer_id"]) == sorted(expected["customer_id"])
    assert set(targets["phase"]) == {"warm_up"}
    # repeat buyers who have not churned get a small discount on profit products, the churned a deal
    stages = table(settings, "campaigns.baselines").filter(pl.col("event_id") == "double11-2024")
    offered = targets.join(stages.select("customer_id", "stage"), on="customer_id")
    expected_kind = (
        pl.when(pl.col("stage") == "churned").then(pl.lit("traffic_deal")).otherwise(pl.lit("profit_discount"))
    )
    assert offered["offer_kind"].to_list() == offered.select(expected_kind).to_series().to_list()
    assert offered["suggested_products"].is_not_null().all()


def reports(settings, language: str) -> tuple[str, str]:
    """The overview and Double 11's review of `settings`' shop in `language`."""
    settings = settings.model_copy(
        update={"reports": ReportSettings(language=language), "output": settings.output / language}
    )
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        assert defs.resolve_job_def(job_name(settings, REPORTS_JOB)).execute_in_process(instance=instance).success
        review = defs.resolve_job_def(job_name(settings, REVIEW_JOB))
        assert review.execute_in_process(instance=instance, partition_key="double11-2024").success
    folder = settings.output / "reports"
    overview = next(folder.glob(f"overview-*.{language}.html")).read_text(encoding="utf-8")
    return overview, (folder / f"review-double11-2024.{language}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_both_reports_show_the_audiences_and_the_response_by_offer_kind(own_audiences, language):
    overview, review = reports(own_audiences, language)
    t = TEXT[language]
    assert t["audiences_title"].replace("'", "&#39;") in overview and "流失边缘客户" in overview
    for kind in ("traffic_deal", "profit_discount"):
        assert t["offer_line"].format(offer=OFFER_NAMES[language][kind]) in overview
    assert "美妆回头客" in review  # the warm-up's list of the shop's own audience, by its label
    assert t["offer_line"].format(offer=OFFER_NAMES[language]["traffic_deal"]) in review


def test_every_audience_field_is_a_column_of_the_customer_table(own_audiences):
    # the settings' fields and the table the conditions run on are one list: a new field needs both
    settings = own_audiences
    facts, rfm = table(settings, "core.customer_facts"), table(settings, "core.rfm")
    built = customer_table(facts, rfm, None, pl.DataFrame(schema={"customer_id": pl.String, "contact_date": pl.Date}),
                           date(2024, 12, 31), settings.value)  # fmt: skip
    assert built.columns == ["customer_id", *AUDIENCE_FIELDS]


def test_an_event_planned_after_an_audience_list_leaves_its_members_to_the_frequency_cap(own_audiences):
    settings = own_audiences
    listed = set(table(settings, "outreach.audience_lists")["customer_id"])  # contacted on 2024-12-31
    targets = table(settings, "outreach.campaign_targets").filter(pl.col("event_id") == "new-year-2025")
    assert set(targets["contact_date"]) == {date(2025, 1, 1)}  # a day after: inside the 7-day cap
    baseline = table(settings, "campaigns.baselines").filter(pl.col("event_id") == "new-year-2025")
    winback = set(baseline.filter(pl.col("rfm_class") == "important_winback")["customer_id"])
    assert winback & listed  # customers the warm-up would have reached but for the cap
    assert not set(targets["customer_id"]) & listed
    # and so the gate lets the whole list out
    sent = read_outbox(settings.output / "outbox" / "new-year-2025" / "targets.csv")
    assert sorted(sent["customer_id"]) == sorted(targets.filter(~pl.col("held_out"))["customer_id"])
