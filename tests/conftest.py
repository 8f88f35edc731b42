"""Shared helpers: shops on temp warehouses, and running the order assets in process."""

from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipelines.definitions import CAMPAIGNS_JOB, INGEST_JOB, OUTREACH_JOB, build_definitions
from pipelines.settings import ShopSettings, parse_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ONLINE_RETAIL = SHARED_DATA / "online_retail_ii.parquet"


def shop(tmp_path: Path, **overrides) -> ShopSettings:
    """A shop on a warehouse in tmp_path: the small synthetic one unless a source is given."""
    raw = {
        "name": "test shop",
        "timezone": "Asia/Shanghai",
        "history_start": "2024-01-01",
        "history_end": "2024-12-31",
        "warehouse": str(tmp_path / "warehouse.duckdb"),
        "output": str(tmp_path / "out"),
        "source": {"kind": "synthetic", "seed": 7, "customers": 400},
    } | overrides
    return parse_settings(raw, tmp_path / "shop.yaml")


# A small CSV export and how it maps to the warehouse's fields
COLUMNS = {
    "order_id": "order_no",
    "customer_id": "buyer",
    "order_ts": "paid_at",
    "amount": "total",
    "region": "province",
}
HEADER = "order_no,buyer,paid_at,total,province\n"


def write_csv(path, *lines: str, encoding: str = "utf-8") -> None:
    path.write_bytes((HEADER + "".join(line + "\n" for line in lines)).encode(encoding))


def file_shop(tmp_path: Path, path: str, columns: dict, **source) -> ShopSettings:
    return shop(tmp_path, source={"kind": "file", "path": path, "columns": columns, **source})


def ingest(settings: ShopSettings, first: str, last: str | None = None, raise_on_error: bool = True):
    """Run the ingest job for first..last in process, on an ephemeral Dagster instance."""
    job = build_definitions(settings).resolve_job_def(INGEST_JOB)
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last or first}
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, tags=tags, raise_on_error=raise_on_error)


def table(settings: ShopSettings, name: str) -> pl.DataFrame:
    """A warehouse table in a stable order, without load times (they differ between runs)."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        frame = conn.sql(f"SELECT * FROM {name}").pl()
    return frame.drop("_loaded_ts", strict=False).sort(pl.all())


@pytest.fixture(scope="session")
def two_years(tmp_path_factory):
    """A small shop over 2023-2024 with both Double 11s planned (and, being over, reviewed)."""
    settings = shop(tmp_path_factory.mktemp("events"), history_start="2023-01-01",
                    source={"kind": "synthetic", "seed": 5, "customers": 3000},
                    outreach={"opt_out": ["C0000001", "C0000002", "C0000003"], "frequency_cap_days": 14})  # fmt: skip
    ingest(settings, "2023-01-01", "2024-12-31")
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        # reminders inside double11-2024's warm-up, which campaign lists must respect
        assert (
            defs.resolve_job_def(OUTREACH_JOB).execute_in_process(instance=instance, partition_key="2024-10-15").success
        )
        for event in ("double11-2023", "double11-2024"):
            assert (
                defs.resolve_job_def(CAMPAIGNS_JOB).execute_in_process(instance=instance, partition_key=event).success
            )
    return settings


class _Cards(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cards, self._class, self._value = {}, None, None

    def handle_starttag(self, tag, attrs):
        self._class = dict(attrs).get("class") if tag == "div" else None

    def handle_data(self, data):
        if self._class == "value":
            self._value = data.strip()
        elif self._class == "label" and self._value is not None:
            self.cards[data.strip()], self._value = self._value, None
        self._class = None


def headline_cards(html: str) -> dict[str, str]:
    """A report's headline cards: label -> value, as the reader sees them."""
    parser = _Cards()
    parser.feed(html)
    return parser.cards
