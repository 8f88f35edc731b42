"""End to end on real data: `regulars run` over Online Retail II's full history, checked
against independent DuckDB computations: orders and revenue over the same Parquet file, RFM
over the clean orders."""

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ONLINE_RETAIL, headline_cards

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "online_retail_ii.yaml"

# The same rules as examples/online_retail_ii.yaml, written independently in SQL: identical
# rows count once; rows need a customer; a C invoice takes its value back; a negative line
# on an ordinary invoice or a line worth more than 25,000 either way is refused. Sums are
# exact decimals of whole-penny invoices.
EXPECTED = """
WITH lines AS (
    SELECT DISTINCT Invoice, "Customer ID" AS customer, InvoiceDate, Quantity, Price, StockCode, Country
    FROM read_parquet(?)
),
kept AS (
    SELECT *, CASE WHEN Invoice LIKE 'C%' THEN -abs(Quantity * Price) ELSE Quantity * Price END AS value
    FROM lines
    WHERE customer IS NOT NULL AND InvoiceDate IS NOT NULL
      AND NOT (Invoice NOT LIKE 'C%' AND Quantity * Price < 0)
      AND abs(Quantity * Price) <= 25000
),
invoices AS (  -- an invoice is paid in whole pence
    SELECT Invoice, any_value(customer) AS customer, min(InvoiceDate) AS invoiced,
           round(sum(value), 2)::DECIMAL(18, 2) AS value
    FROM kept GROUP BY Invoice
)
SELECT strftime(invoiced, '%Y-%m') AS month,
       count(*) FILTER (WHERE Invoice NOT LIKE 'C%') AS orders,
       count(DISTINCT customer) FILTER (WHERE Invoice NOT LIKE 'C%') AS customers,
       sum(value)::DOUBLE AS net_revenue
FROM invoices GROUP BY ALL ORDER BY month
"""

ACTUAL = """
SELECT strftime(order_date, '%Y-%m') AS month,
       count(*) FILTER (WHERE status = 'completed') AS orders,
       count(DISTINCT customer_id) FILTER (WHERE status = 'completed') AS customers,
       sum(amount::DECIMAL(18, 2))::DOUBLE AS net_revenue
FROM staging.orders GROUP BY ALL ORDER BY month
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("online_retail")
    env = os.environ | {"DAGSTER_HOME": str(home), "REGULARS_WAREHOUSE": str(home / "warehouse.duckdb"),
                        "REGULARS_OUTPUT": str(home / "out")}  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--config", str(EXAMPLE)],
        env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1067370 rows in = " in run.stdout and "Event Christmas 2011" in run.stdout
    return home / "warehouse.duckdb"


def test_orders_customers_and_net_revenue_per_month_match_an_independent_computation(warehouse):
    with duckdb.connect() as memory:
        expected = memory.execute(EXPECTED, [str(ONLINE_RETAIL)]).fetchall()
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        actual = conn.execute(ACTUAL).fetchall()
    assert len(actual) == 25  # December 2009 to December 2011
    assert actual == expected


def test_every_source_row_is_kept_or_refused(warehouse):
    with duckdb.connect() as memory:
        rows_in = memory.execute("SELECT count(*) FROM read_parquet(?)", [str(ONLINE_RETAIL)]).fetchone()[0]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        raw, kept, refused = conn.execute("""
            SELECT (SELECT count(*) FROM raw.orders), (SELECT count(*) FROM staging.order_lines),
                   (SELECT count(*) FROM staging.rejects)
        """).fetchone()
        overlap = conn.execute("""
            SELECT count(*) FROM staging.rejects
            WHERE reason = 'duplicate' AND order_date BETWEEN '2010-12-01' AND '2010-12-09'
        """).fetchone()[0]
    assert raw == rows_in == kept + refused
    # The two sheets overlap on 2010-12-01..09: each overlapping row is refused once as a duplicate.
    assert overlap >= 22_523


RFM_BY_HAND = """
WITH buyers AS (
    SELECT customer_id,
           max(order_date) FILTER (WHERE status = 'completed') AS last_purchase,
           count(DISTINCT order_date) FILTER (WHERE status = 'completed') AS frequency,  -- same-day orders once
           round(sum(amount), 2) AS monetary                                            -- net, all history
    FROM staging.orders WHERE order_date <= DATE '2011-12-09'
    GROUP BY customer_id HAVING count(*) FILTER (WHERE status = 'completed') > 0
),
scored AS (
    SELECT customer_id, DATE '2011-12-09' - last_purchase AS recency_days, frequency, monetary FROM buyers
),
highs AS (
    SELECT *, recency_days < avg(recency_days) OVER () AS r, frequency > avg(frequency) OVER () AS f,
           monetary > avg(monetary) OVER () AS m
    FROM scored
)
SELECT customer_id, recency_days, frequency, monetary,
       CASE WHEN r AND f AND m THEN 'important_value' WHEN NOT r AND f AND m THEN 'important_winback'
            WHEN r AND NOT f AND m THEN 'important_develop' WHEN NOT r AND NOT f AND m THEN 'important_retain'
            WHEN r AND f AND NOT m THEN 'potential' WHEN r AND NOT f AND NOT m THEN 'new'
            WHEN NOT r AND f AND NOT m THEN 'general_maintain' ELSE 'lost' END AS rfm_class
FROM highs ORDER BY customer_id
"""


def test_rfm_values_and_classes_match_an_independent_sql_computation(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        expected = conn.execute(RFM_BY_HAND).fetchall()
        actual = conn.execute(
            "SELECT customer_id, recency_days, frequency, monetary, rfm_class FROM core.rfm ORDER BY customer_id"
        ).fetchall()
        as_of = conn.execute("SELECT DISTINCT as_of_date FROM core.rfm").fetchall()
    assert as_of == [(date(2011, 12, 9),)]
    assert len(actual) == len(expected) > 5000
    assert actual == expected


def test_christmas_2011_gets_goals_from_christmas_2010(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        goals = conn.execute(
            "SELECT measure, goal, comparable_event, comparable_actual FROM campaigns.goals"
            " WHERE event_id = 'christmas-2011' AND rfm_class IS NULL ORDER BY measure"
        ).fetchall()
        new_2010 = conn.execute("""
            WITH first_buy AS (SELECT customer_id, min(order_date) AS first FROM staging.orders
                               WHERE status = 'completed' GROUP BY ALL)
            SELECT count(DISTINCT o.customer_id) FROM staging.orders o JOIN first_buy USING (customer_id)
            WHERE o.status = 'completed' AND o.order_date BETWEEN DATE '2010-11-14' AND DATE '2010-12-09'
              AND first >= DATE '2010-11-14'
        """).fetchall()[0][0]
    by_measure = {measure: (goal, comparable, actual) for measure, goal, comparable, actual in goals}
    assert {comparable for _, comparable, _ in by_measure.values()} == {"christmas-2010"}
    assert by_measure["new_buyers"][2] == new_2010 > 0
    assert by_measure["returning_buyers"][0] > 0


def test_christmas_2011_review_shows_the_orders_figures(warehouse):
    """The review's headline cards against the orders of the selling window (14 November to 9 December)."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        revenue, orders = conn.execute("""
            SELECT sum(amount), count(*) FILTER (WHERE status = 'completed') FROM staging.orders
            WHERE order_date BETWEEN DATE '2011-11-14' AND DATE '2011-12-09'
        """).fetchall()[0]
    html = (warehouse.parent / "out" / "reports" / "review-christmas-2011.en.html").read_text(encoding="utf-8")
    cards = headline_cards(html)
    assert cards["Net revenue (GBP)"] == f"{revenue:,.0f}" and cards["Orders"] == f"{orders:,}"
    assert "Goals were set from Christmas 2010" in html


def test_the_overview_judges_rule_and_model_on_the_last_180_days(warehouse):
    """Purchases made in the hold-out, counted in SQL; the overview shows the table's figures and the chart."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (made,) = conn.execute("""
            WITH days AS (SELECT DISTINCT customer_id, order_date FROM staging.orders WHERE status = 'completed'),
                 first AS (SELECT customer_id FROM days GROUP BY ALL HAVING min(order_date) <= DATE '2011-06-12')
            SELECT count(*) FROM days JOIN first USING (customer_id) WHERE order_date > DATE '2011-06-12'
        """).fetchall()[0]
        quality = conn.sql("SELECT * FROM analysis.prediction_quality ORDER BY method").pl()
    assert quality["actual_purchases"].to_list() == [made, made]
    html = (warehouse.parent / "out" / "reports" / "overview-2011-12-09.en.html").read_text(encoding="utf-8")
    assert "We held back the last 180 days (after 2011-06-12)" in html
    for auc in quality["auc_buys_again"]:
        assert f'<td class="n">{auc:.2f}</td>' in html
    section = html.split("We held back the last 180 days")[1].split("<h2>")[0]
    assert "Repeat purchases per week" in section and section.count("<svg") == 1  # the tracking chart
