"""The shop overview: its figures against the warehouse, escaping, both languages, no network."""

import re
from html.parser import HTMLParser

import dagster as dg
import pytest

from assets.customers.rfm import CLASSES
from pipelines.definitions import CUSTOMERS_JOB, REPORTS_JOB, build_definitions
from pipelines.settings import CLASS_CODES, ReportSettings
from reports.render import mask
from reports.translations import ACTIONS, CLASS_NAMES, TEXT
from tests.conftest import ingest, shop, table


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
    settings = shop(tmp_path_factory.mktemp("reports"), name=NAME, history_start="2024-07-01")
    ingest(settings, "2024-07-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        assert build_definitions(settings).resolve_job_def(CUSTOMERS_JOB).execute_in_process(instance=instance).success
    return settings


def overview(settings, language: str) -> str:
    settings = settings.model_copy(
        update={"reports": ReportSettings(language=language), "output": settings.output / language}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        assert build_definitions(settings).resolve_job_def(REPORTS_JOB).execute_in_process(instance=instance).success
    return next((settings.output / "reports").glob("overview-*.html")).read_text(encoding="utf-8")


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


@pytest.mark.parametrize("table_", [TEXT, ACTIONS, CLASS_NAMES])
def test_every_language_has_every_key(table_):
    assert table_["en"].keys() == table_["zh"].keys()


def test_every_class_has_a_name_and_an_action():
    codes = {code for code, _, _ in CLASSES.values()}
    assert set(CLASS_NAMES["en"]) == set(ACTIONS["en"]) == set(CLASS_CODES) == codes


def test_a_masked_id_shows_at_most_half_of_it_and_tells_a_due_list_apart():
    assert [mask(i) for i in ("C0001234", "12346", "13812345678", "abc")] == [
        "****1234",
        "***46",
        "*******5678",
        "**c",
    ]
    due = ["C0000001", "C0000101", "C0002101", "C0012345"]  # the first three looked alike as 'C0****01'
    assert len({mask(i) for i in due}) == len(due)
