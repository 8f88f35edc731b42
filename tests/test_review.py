"""Post-promotion reviews: campaigns.results on a hand-worked shop, the report's headline against
the orders, escaping, both languages, headless Chromium, the sensor and `regulars report`."""

from datetime import date
from html import unescape

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from click.testing import CliRunner
from jinja2 import UndefinedError

from assets.campaigns.goals import growth_of
from pipelines.calendar import comparable
from pipelines.cli import main
from pipelines.definitions import (
    CAMPAIGNS_JOB,
    INGEST_JOB,
    RANGE_END,
    RANGE_START,
    build_definitions,
    job_name,
    shop_job,
)
from pipelines.settings import load_settings
from reports import review, translations
from tests.conftest import headline_cards, open_in_chromium, table

SCRIPT = '<script>alert("p")</script>'
# Two sales of one kind. Phases: warm-up 3 days, sprint 2, after-glow 2 (build-up 6 days before).
#   sale-feb: warm-up 02-07..09, sprint 02-10..11, after-glow 02-12..13
#   sale-apr: warm-up 04-07..09, sprint 04-10..11, after-glow 04-12..13
EVENTS = {
    "growth_rate": 0.0,
    "presets": [],
    "custom": [
        {"id": "sale-feb", "kind": "sale", "label": "February sale", "sprint": ["2024-02-10", "2024-02-11"],
         "build_up_days": 6, "warm_up_days": 3, "after_glow_days": 2},
        {"id": "sale-apr", "kind": "sale", "label": "April sale", "sprint": ["2024-04-10", "2024-04-11"],
         "build_up_days": 6, "warm_up_days": 3, "after_glow_days": 2},
    ],
}  # fmt: skip
# A and D were customers before both sales; B and C came in February's, E in April's.
ORDERS = [
    ("o1", "A", "2024-01-05 10:00", 100, "M-1", "Mug"),
    ("o2", "D", "2024-01-20 10:00", 40, "M-1", "Mug"),
    ("o3", "B", "2024-02-08 10:00", 50, "M-1", "Mug"),  # feb warm-up, new
    ("o4", "A", "2024-02-10 10:00", 200, "M-1", "Mug"),  # feb sprint, returning
    ("o5", "C", "2024-02-11 10:00", 80, "M-1", "Mug"),  # feb sprint, new
    ("o6", "B", "2024-03-01 10:00", 60, "M-1", "Mug"),  # B back after 22 days
    ("o7", "G", "2024-04-08 10:00", -5, "M-1", "Mug"),  # refused: negative amount on a sale
    ("o8", "A", "2024-04-10 10:00", 300, "M-1", "Mug"),  # apr sprint, returning
    ("o9", "<b>E</b>", "2024-04-11 10:00", 90, "S-1", SCRIPT),  # apr sprint, new
    ("o10", "D", "2024-04-12 10:00", 70, "M-1", "Mug"),  # apr after-glow, returning (83 days after 01-20)
    ("o11", "D", "2024-07-31 10:00", 30, "M-1", "Mug"),  # the last day of data
]


@pytest.fixture(scope="module")
def little_shop(tmp_path_factory):
    """The hand-worked shop, loaded up to 2024-04-12 (the day before April's after-glow ends)."""
    folder = tmp_path_factory.mktemp("review")
    pl.DataFrame(ORDERS, schema=["order_id", "customer_id", "ts", "amount", "sku", "product"], orient="row").write_csv(
        folder / "orders.csv"
    )
    raw = {
        "name": "Little <i>shop</i>", "timezone": "Europe/London", "currency": "GBP",
        "history_start": "2024-01-01", "history_end": "2024-07-31", "warehouse": str(folder / "warehouse.duckdb"),
        "output": str(folder / "out"), "events": EVENTS,
        "source": {"kind": "file", "path": str(folder / "orders.csv"),
                   "columns": {"order_id": "order_id", "customer_id": "customer_id", "order_ts": "ts",
                               "amount": "amount", "sku": "sku", "product": "product"}},
    }  # fmt: skip
    (folder / "shop.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    settings = load_settings(folder / "shop.yaml")
    instance = dg.DagsterInstance.ephemeral()
    ingest_days(settings, instance, "2024-01-01", "2024-04-12")
    yield settings, instance
    instance.dispose()


def ingest_days(settings, instance, first: str, last: str) -> None:
    tags = {RANGE_START: first, RANGE_END: last}
    job = shop_job(settings, INGEST_JOB)
    assert job.execute_in_process(instance=instance, tags=tags).success


def sensor_requests(settings, instance) -> dict[str, str]:
    defs = build_definitions(settings)
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    requests = defs.resolve_sensor_def(f"{settings.id}__plan_and_review_events")(context)
    return {} if isinstance(requests, dg.SkipReason) else {r.partition_key: r.job_name for r in requests}


def test_the_sensor_reviews_an_event_once_its_after_glow_is_loaded_and_the_results_are_hand_worked(little_shop):
    settings, instance = little_shop
    defs = build_definitions(settings)
    campaigns = job_name(settings, CAMPAIGNS_JOB)
    # February's after-glow is loaded: its whole run; April's ends 04-13, which is not: its plan through the
    # after-glow's list (the eve of its first day, 04-11, is loaded).
    assert sensor_requests(settings, instance) == {"sale-feb": campaigns, "sale-apr": campaigns}
    ingest_days(settings, instance, "2024-04-13", "2024-07-31")
    requests = sensor_requests(settings, instance)
    assert requests == {"sale-feb": campaigns, "sale-apr": campaigns}
    for event_id in ("sale-feb", "sale-apr"):  # in calendar order: April's goals come from February
        job = defs.resolve_job_def(requests[event_id])
        assert job.execute_in_process(instance=instance, partition_key=event_id).success
    assert sensor_requests(settings, instance) == {}
    assert (settings.output / "reports" / "review-sale-apr.en.html").exists()

    results = table(settings, "campaigns.results").filter(pl.col("event_id") == "sale-apr")

    def value(section, dimension, measure, column="actual"):
        row = results.filter(
            (pl.col("section") == section) & (pl.col("dimension") == dimension) & (pl.col("measure") == measure)
        )
        assert row.height == 1, (section, dimension, measure)
        return row[column][0]

    # April's window 04-07..04-13: A 300 and D 70 returning, E 90 new; G's row was refused.
    assert value("event", "all", "new_buyers") == 1 and value("event", "all", "returning_buyers") == 2
    assert value("event", "all", "revenue") == 460 and value("event", "all", "orders") == 3
    assert value("event", "all", "average_order_value") == pytest.approx(460 / 3)
    assert value("phase", "sprint", "revenue") == 390 and value("phase", "after_glow", "revenue") == 70
    assert value("day", "2024-04-12", "revenue") == 70 and value("day", "2024-04-09", "revenue") == 0
    # February, the comparable: 130 from new buyers (50 in the warm-up, 80 in the sprint), 200 returning.
    assert value("event", "all", "revenue_new", "comparable") == 130
    revenue_new_goal = value("event", "all", "revenue_new", "goal")
    assert value("phase", "warm_up", "revenue_new", "goal") == pytest.approx(revenue_new_goal * 50 / 130)
    assert value("phase", "sprint", "revenue_new", "goal") == pytest.approx(revenue_new_goal * 80 / 130)
    assert value("day", "2024-04-08", "revenue", "comparable") == 50  # 02-08 is as far from February's sprint
    # Baseline on 04-01: A, B, C, D; A and D bought.
    classes = results.filter(pl.col("section") == "class")
    assert classes.filter(pl.col("measure") == "customers")["actual"].sum() == 4
    assert classes.filter(pl.col("measure") == "buyers")["actual"].sum() == 2
    migration = results.filter(pl.col("section") == "migration")
    assert migration["actual"].sum() == 4
    # Who came back: of February's B and C, B within 90 days; A (after 36 days) and D (83) from outside
    # events, within 90 and 180; E's 90 days end 07-10, before the data does, and E did not return.
    assert value("acquired", "sprint", "customers") == 1
    assert value("cohort", "sale-feb", "repeat_rate_90_days") == 0.5
    assert value("cohort", "sale-feb", "repeat_rate_180_days") is None  # 02-08 + 180 days is after 07-31
    assert value("cohort", "outside_events", "repeat_rate_180_days") == 1.0
    assert value("cohort", "sale-apr", "repeat_rate_90_days") == 0.0
    assert value("product", "M-1", "revenue") == 370 and value("product", "S-1", "revenue", "detail") == SCRIPT
    assert value("quality", "negative_amount", "rows") == 1 and value("quality", "all", "rows_in") == 4


def test_text_from_the_data_is_escaped_and_customers_do_not_appear(little_shop):
    settings, _ = little_shop
    html = (settings.output / "reports" / "review-sale-apr.en.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<b>E" not in html and "<i>shop" not in html
    assert "&lt;script&gt;alert(&#34;p&#34;)&lt;/script&gt;" in html and "Little &lt;i&gt;shop&lt;/i&gt;" in html
    assert "E&lt;/b&gt;" not in html  # nor any customer id: the review is about groups, not people


def test_the_review_sets_each_goal_beside_the_comparables_actual_and_the_growth_on_it(little_shop):
    settings, _ = little_shop
    html = unescape((settings.output / "reports" / "review-sale-apr.en.html").read_text(encoding="utf-8"))
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        goal = conn.execute("SELECT sum(goal) FROM campaigns.goals WHERE event_id = 'sale-apr'"
                            " AND measure IN ('revenue_new', 'revenue_returning')").fetchall()[0][0]  # fmt: skip
    # February sold 330 (50 + 200 + 80), April 460: 1.39 times it
    row = (f'<tr><td>Net revenue</td><td class="n">330</td><td class="n">×{goal / 330:.2f}</td>'
           f'<td class="n">{goal:,.0f}</td><td class="n">460</td><td class="n">×1.39</td>'
           f'<td class="n">{460 / goal:.0%}</td></tr>')  # fmt: skip
    assert "How the goals were set" in html and row in html
    assert f"February sale: 330 · this event ×1.39 · goal ×{goal / 330:.2f}" in html  # on the headline card
    assert "Growth set in the settings (events.growth_rate): +0.0%." in html  # EVENTS set it to 0


def test_regulars_report_renders_on_demand_and_refuses_an_event_not_over(little_shop, tmp_path, monkeypatch):
    settings, _ = little_shop
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    config = str(settings.output.parent / "shop.yaml")
    path = settings.output / "reports" / "review-sale-feb.en.html"
    path.unlink()
    result = CliRunner().invoke(main, ["report", "sale-feb", "--config", config])
    assert result.exit_code == 0, result.output
    assert "results and review" in result.output and f"Report: {path}" in result.output and path.exists()
    result = CliRunner().invoke(main, ["report", "sale-may", "--config", config])
    assert result.exit_code == 2 and "no event 'sale-may'; events are sale-feb, sale-apr" in result.output


def test_the_double11_review_headline_matches_the_orders(two_years):
    """Headline cards against an independent SQL computation over staging.orders and campaigns.goals."""
    html = (two_years.output / "reports" / "review-double11-2024.en.html").read_text(encoding="utf-8")
    first, last = date(2024, 10, 20), date(2024, 11, 18)  # warm-up to after-glow
    with duckdb.connect(str(two_years.warehouse), read_only=True) as conn:
        revenue, orders, new, returning = conn.execute("""
            WITH first_buy AS (SELECT customer_id, min(order_date) AS first FROM staging.orders
                               WHERE status = 'completed' GROUP BY ALL),
                 window_orders AS (SELECT * FROM staging.orders JOIN first_buy USING (customer_id)
                                   WHERE order_date BETWEEN ? AND ?)
            SELECT sum(amount), count(*) FILTER (WHERE status = 'completed'),
                   count(DISTINCT customer_id) FILTER (WHERE status = 'completed' AND first >= ?),
                   count(DISTINCT customer_id) FILTER (WHERE status = 'completed' AND first < ?)
            FROM window_orders
        """, [first, last, first, first]).fetchall()[0]  # fmt: skip
        goal = conn.execute(
            "SELECT sum(goal) FROM campaigns.goals WHERE event_id = 'double11-2024'"
            " AND measure IN ('revenue_new', 'revenue_returning')"
        ).fetchall()[0][0]
    cards = headline_cards(html)
    assert cards["Net revenue (CNY)"] == f"{revenue:,.0f}" and cards["Orders"] == f"{orders:,}"
    assert cards["New buyers"] == f"{new:,}" and cards["Returning buyers"] == f"{returning:,}"
    assert f"Goal {goal:,.0f} · {revenue / goal:.0%}" in html.replace("<b>", "").replace("</b>", "")


def rendered(settings, language: str) -> str:
    event = {e.id: e for e in settings.calendar()}["double11-2024"]
    results = table(settings, "campaigns.results").filter(pl.col("event_id") == event.id)
    calendar = settings.calendar()
    growth = growth_of(table(settings, "campaigns.goals").filter(pl.col("event_id") == event.id))
    return review.review_html(
        "shop", "CNY", language, event, comparable(event, calendar), calendar, results, growth=growth
    )


def test_both_languages_render_and_a_missing_translation_fails(two_years, monkeypatch):
    english, chinese = rendered(two_years, "en"), rendered(two_years, "zh")
    assert "Post-promotion review" in english and "大促复盘" in chinese
    assert translations.TEXT["en"]["rounding_note"] in english and translations.TEXT["zh"]["rounding_note"] in chinese
    monkeypatch.delitem(translations.TEXT["zh"], "measure_orders")
    with pytest.raises((KeyError, UndefinedError), match="measure_orders"):
        rendered(two_years, "zh")


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_review_opens_in_headless_chromium_without_errors_requests_or_missing_glyphs(two_years, tmp_path, language):
    path = tmp_path / f"review.{language}.html"
    path.write_text(rendered(two_years, language), encoding="utf-8")
    seen = open_in_chromium(path, tmp_path / f"review.{language}.png", tables=("table.outreach", "table.goal-basis"),
                            texts=("table.outreach", "p.sub", "tr.total"))  # fmt: skip
    words = translations.TEXT[language]
    assert seen["errors"] == [] and seen["requests"] == [path.as_uri()]
    assert seen["missing_glyphs"] == ""
    assert seen["charts"] >= 4 and seen["height"] > 2000
    assert (tmp_path / f"review.{language}.png").stat().st_size > 50_000
    # "Did the outreach work?": a header and a line per list, per phase and for the event
    results = table(two_years, "campaigns.results").filter(
        (pl.col("event_id") == "double11-2024") & (pl.col("section") == "outreach")
    )
    assert translations.TEXT[language]["outreach_title"] in seen["headings"]
    assert seen["rows"]["table.outreach"] == 1 + results.select("dimension", "detail").n_unique() > 3
    # each list's uplift with its exact test
    assert words["exact_test_p"].split("{")[0] in seen["texts"]["table.outreach"][0]
    # "How the goals were set": a header and a line per headline measure, each beside Double 11 2023's figure,
    # and how the growth was measured (over the 90 days before each build-up: this shop's data reach back)
    assert seen["rows"]["table.goal-basis"] == 1 + len(review.HEADLINE)
    assert any(text.startswith(words["growth_measured"].split("{")[0]) for text in seen["texts"]["p.sub"])
    # the class table's total: the returning buyers
    assert seen["texts"]["tr.total"][0].startswith(words["all_returning_buyers"])


def test_best_lists_only_what_reached_its_goal_and_worst_only_what_fell_short(two_years):
    event = {e.id: e for e in two_years.calendar()}["double11-2024"]
    results = table(two_years, "campaigns.results").filter(pl.col("event_id") == event.id)
    # every ranked figure set by hand: revenue 120% of goal, orders 80%, new buyers 50%, the rest without a goal
    goals = {"revenue": 1.2, "orders": 0.8, "new_buyers": 0.5}
    results = results.with_columns(
        goal=pl.when(pl.col("section") != "event").then(None)
        .when(pl.col("measure").is_in(list(goals))).then(pl.col("actual") / pl.col("measure").replace_strict(
            goals, default=None, return_dtype=pl.Float64))
        .otherwise(None)
    )  # fmt: skip
    html = review.review_html("shop", "CNY", "en", event, None, two_years.calendar(), results)
    best = html.split("What went best")[1].split("What went worst")[0]
    worst = html.split("What went worst")[1].split("</div>")[0]
    assert "Net revenue" in best and "Orders" not in best and "New buyers" not in best
    assert worst.index("New buyers") < worst.index("Orders") and "Net revenue" not in worst


def test_the_review_says_why_phase_new_buyers_and_acquired_customers_differ(two_years):
    event = {e.id: e for e in two_years.calendar()}["double11-2024"]
    completed = table(two_years, "staging.orders").filter(pl.col("status") == "completed")
    first = completed.group_by("customer_id").agg(first=pl.col("order_date").min())
    start, end = event.phases["warm_up"][0], event.end
    new = first.filter(pl.col("first").is_between(start, end))
    per_phase = sum(
        completed.filter(pl.col("order_date").is_between(a, b) & pl.col("customer_id").is_in(new["customer_id"]))
        ["customer_id"].n_unique()
        for phase, (a, b) in event.phases.items() if phase != "build_up"
    )  # fmt: skip
    assert per_phase > new.height  # some new customers bought in two phases
    text = unescape(rendered(two_years, "en"))
    assert f"The phase table's new buyers add up to {per_phase:,}, not {new.height:,}" in text


def test_the_review_shows_orders_not_completed_by_phase_and_day(two_years):
    event = {e.id: e for e in two_years.calendar()}["double11-2024"]
    orders = table(two_years, "staging.orders").filter(
        pl.col("order_date").is_between(event.phases["warm_up"][0], event.end)
    )
    per_day = (
        orders.group_by("order_date")
        .agg(done=(pl.col("status") == "completed").sum(), cancelled=(pl.col("status") == "cancelled").sum())
        .filter(pl.col("cancelled") > 0)
        .sort("order_date")
    )
    assert per_day.height > 0  # the synthetic shop cancels some orders
    html = rendered(two_years, "en")
    assert "Orders not completed, by day" in html and "Cancelled, returned or lost" in html
    for day, done, cancelled in per_day.rows():
        assert (f'<tr><td>{day}</td><td class="n">{done:,}</td><td class="n">0</td>'
                f'<td class="n">{cancelled:,}</td></tr>') in html  # fmt: skip


def test_the_class_table_adds_up_to_the_returning_buyers(two_years):
    results = table(two_years, "campaigns.results").filter(pl.col("event_id") == "double11-2024")
    classes = results.filter((pl.col("section") == "class") & (pl.col("measure") == "buyers"))
    returning = results.filter((pl.col("section") == "event") & (pl.col("measure") == "returning_buyers"))
    assert classes["actual"].sum() == returning["actual"].item()
    # customers whose first order fell in the build-up, after the baseline, are a row of their own
    newcomers = classes.filter(pl.col("dimension") == "first_order_in_build_up")["actual"].item()
    assert newcomers > 0
    html = unescape(rendered(two_years, "en"))
    total = html.split("All: the returning buyers</td>")[1].split("</tr>")[0]
    assert f'<td class="n">{returning["actual"].item():,.0f}</td>' in total
    assert 'First order in the build-up (no class yet)</td><td class="n">' in html
