"""The shop overview: its figures against the warehouse, escaping, both languages, no network."""

import base64
import re
from datetime import date, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.definitions import CUSTOMERS_JOB, REPORTS_JOB, shop_job
from pipelines.rfm_classes import CLASS_CODES
from pipelines.settings import ReportSettings
from reports.render import mask
from reports.translations import ACTIONS, CATEGORY_NAMES, CHANNEL_NAMES, CLASS_NAMES, EVENT_NAMES, OFFER_NAMES, TEXT
from tests.conftest import ingest, open_in_chromium, shop, table


class Cells(HTMLParser):
    """Table cells and headline cards, as text."""

    def __init__(self):
        super().__init__()
        self.cells, self._in = [], False

    def handle_starttag(self, tag, attrs):
        self._in = tag in ("td", "div")

    def handle_data(self, data):
        if self._in and data.strip():
            self.cells.append(data.strip())


NAME = '<script>alert("x")</script> & Co'


@pytest.fixture(scope="module")
def shop_with_customers(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    settings = shop(folder, name=NAME, history_start="2024-07-01")
    raw = {"name": NAME, "history_start": "2024-07-01", "history_end": "2024-12-31", "warehouse": "warehouse.duckdb",
           "output": "out", "source": {"kind": "synthetic", "seed": 7, "customers": 400}}  # fmt: skip
    (folder / "shop.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")  # the same shop, for the CLI
    ingest(settings, "2024-07-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, CUSTOMERS_JOB).execute_in_process(instance=instance).success
    return settings


def overview(settings, language: str, path: bool = False) -> str | Path:
    settings = settings.model_copy(
        update={"reports": ReportSettings(language=language), "output": settings.output / language}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, REPORTS_JOB).execute_in_process(instance=instance).success
    found = next((settings.output / "reports").glob(f"overview-*.{language}.html"))
    return found if path else found.read_text(encoding="utf-8")


def test_headline_figures_match_the_warehouse(shop_with_customers):
    html = overview(shop_with_customers, "en")
    facts = table(shop_with_customers, "core.customer_facts")
    cells = Cells()
    cells.feed(html)
    assert f"{facts.height:,}" in cells.cells
    assert f"CNY {facts['net_revenue'].sum():,.0f}" in cells.cells
    assert f"{(facts['purchase_days'] >= 2).mean():.1%}" in cells.cells


def test_text_from_the_data_is_escaped(shop_with_customers):
    html = overview(shop_with_customers, "en")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in html


def test_the_page_asks_for_nothing_from_the_network_in_either_language(shop_with_customers):
    for language, title in (("en", "Shop overview"), ("zh", "店铺概览")):
        html = overview(shop_with_customers, language)
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
        assert title in html


def test_the_overview_says_whether_reminders_worked_in_either_language(shop_with_customers):
    for language in ("en", "zh"):
        html = overview(shop_with_customers, language)
        # no reminders were listed for this shop: nothing to compare yet
        assert TEXT[language]["reminders_title"] in html and TEXT[language]["outreach_none"] in html


@pytest.mark.parametrize(
    "table_", [TEXT, ACTIONS, CLASS_NAMES, CHANNEL_NAMES, OFFER_NAMES, CATEGORY_NAMES, EVENT_NAMES]
)
def test_every_language_has_every_key(table_):
    # each table is a section of the catalogs, reports/locales/en.yaml and zh.yaml
    assert table_["en"].keys() == table_["zh"].keys()


def test_every_class_has_a_name_and_an_action():
    for language in ("en", "zh"):
        assert set(CLASS_NAMES[language]) == set(ACTIONS[language]) == set(CLASS_CODES)


def test_a_masked_id_shows_at_most_half_of_it_and_tells_a_due_list_apart():
    assert [mask(i) for i in ("C0001234", "12346", "13812345678", "abc")] == [
        "****1234",
        "***46",
        "*******5678",
        "**c",
    ]
    due = ["C0000001", "C0000101", "C0002101", "C0012345"]  # the first three looked alike as 'C0****01'
    assert len({mask(i) for i in due}) == len(due)


def test_the_overview_counts_who_is_due_each_day_and_links_their_list_which_excel_opens(shop_with_customers):
    path = overview(shop_with_customers, "en", path=True)
    html = path.read_text(encoding="utf-8")
    rfm = table(shop_with_customers, "core.rfm")
    as_of = table(shop_with_customers, "core.customer_facts")["as_of_date"].max()
    due = rfm.filter(
        pl.col("due_date").is_between(as_of + timedelta(days=1), as_of + timedelta(days=7))
        & pl.col("stage").is_in(["new", "active"])
    )
    assert due.height > 0
    cells = Cells()
    cells.feed(html)
    # each day's row ends with its total, and no customer id shows
    for day, customers in due.group_by("due_date").len().iter_rows():
        row = cells.cells[cells.cells.index(str(day)) :]
        assert f"{customers:,}" in row[: len(set(due["rfm_class"])) + 2]
    assert not any(mask(i) in html or i in html for i in due["customer_id"])
    # and by channel, named in the report's language
    channels = due.join(table(shop_with_customers, "core.customer_facts"), on="customer_id")["first_channel"]
    by_channel = re.search(r"By the channel of their first order: ([^<]*)</p>", html).group(1)
    for channel, customers in channels.value_counts().rows():
        assert f"{CHANNEL_NAMES['en'][channel]} {customers:,}" in by_channel
    # the list travels inside the report (a link that still works when the report is mailed), as in the outbox
    link = re.search(r'<a href="data:text/csv;base64,([^"]+)" download="([^"]+)"', html)
    raw = base64.b64decode(link.group(1))
    assert raw == (shop_with_customers.output / "en" / "outbox" / "due" / link.group(2)).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    listed = pl.read_csv(raw[3:], infer_schema=False)["客户编号"]  # the outreach language's header: a Chinese shop
    assert sorted(listed) == sorted(due["customer_id"])


def test_the_period_figures_match_the_orders(shop_with_customers):
    html = overview(shop_with_customers, "en")
    orders = table(shop_with_customers, "staging.orders").filter(pl.col("status") == "completed")
    # default period: the 12 months to 2024-12-31 (the shop starts in July); before it, nothing
    revenue = orders.filter(pl.col("order_date") >= date(2024, 1, 1))["amount"].sum()
    cells = Cells()
    cells.feed(html)
    row = cells.cells[cells.cells.index("Net revenue (CNY)") :]
    assert row[1:4] == [f"{revenue:,.0f}", "not enough history", "–"]  # 2023 is before the data, not zero
    assert "2024-01-01 to 2024-12-31, against 2023-01-01 to 2023-12-31" in html
    assert "this period's figures cover 2024-07-01 to 2024-12-31 only" in unescape(html)


def test_a_six_month_shop_shows_not_enough_history_where_the_data_do_not_reach(shop_with_customers):
    html = overview(shop_with_customers, "en")
    cells = Cells()
    cells.feed(html)
    # January to June 2024 come before the data (1 July): one "not enough history" across each month's row
    for month in ("2024-01", "2024-06"):
        assert cells.cells[cells.cells.index(month) + 1] == "not enough history"
    # July to December are known; the same months of 2023, beneath them, are not
    assert '<td>2024-07<br><span class="prev">previous: not enough history</span></td>' in html
    # churn: no order in 365 days cannot have happened in six months of data, in the period or any month
    churn = cells.cells[cells.cells.index("Churn rate (no order in 365 days)") :]
    assert churn[1:3] == ["not enough history", "not enough history"]
    # someone whose only order is on 2024-07-01 is more than 365 days away from 2025-07-02 on
    assert "it is known from 2025-07-02" in html


def test_regulars_report_overview_takes_a_period_and_a_language_and_keeps_the_other(shop_with_customers):
    folder = shop_with_customers.output.parent
    config = str(folder / "shop.yaml")
    runner = CliRunner(env={"DAGSTER_HOME": str(folder / "dagster")})
    for language in ("zh", "en"):
        args = ["report", "overview", "--config", config, "--language", language, "--from", "2024-10-01"]
        result = runner.invoke(main, [*args, "--to", "2024-11-30"])
        assert result.exit_code == 0, result.output
    reports = folder / "out" / "reports"
    zh = (reports / "overview-2024-10-01_2024-11-30.zh.html").read_text(encoding="utf-8")
    en = (reports / "overview-2024-10-01_2024-11-30.en.html").read_text(encoding="utf-8")
    assert "店铺概览" in zh and "2024-10-01 至 2024-11-30，对比 2024-08-01 至 2024-09-30" in zh
    assert "Shop overview" in en and "2024-10-01 to 2024-11-30" in en
    result = runner.invoke(main, ["report", "overview", "--config", config, "--language", "en"])
    assert result.exit_code == 0 and "overview-2024-12-31.en.html" in result.output  # the default period's file
    assert (reports / "overview-2024-10-01_2024-11-30.en.html").read_text(encoding="utf-8") == en
    result = runner.invoke(main, ["report", "overview", "--config", config, "--language", "fr"])
    assert result.exit_code == 2 and "'fr' is not one of 'en', 'zh'" in result.output


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_overview_opens_in_chromium_with_every_character_drawn(shop_with_customers, tmp_path, language):
    path = overview(shop_with_customers, language, path=True)
    seen = open_in_chromium(path, tmp_path / f"overview.{language}.png", texts=("tr.unknown", "p.history"))
    assert seen["errors"] == [] and seen["requests"] == [path.as_uri()]
    assert seen["missing_glyphs"] == ""
    assert seen["charts"] >= 4 and (tmp_path / f"overview.{language}.png").stat().st_size > 50_000
    # January to June 2024, before the data, each a row saying so, and the notes on where the data start
    not_enough = TEXT[language]["not_enough_history"]
    assert seen["texts"]["tr.unknown"] == [f"2024-{month:02d}\t{not_enough}" for month in range(1, 7)]
    assert seen["texts"]["p.history"] == [
        TEXT[language]["period_partial"].format(start="2024-07-01", last="2024-12-31"),
        TEXT[language]["previous_not_known"].format(start="2024-07-01"),
    ]
