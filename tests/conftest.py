"""Shared helpers: shops on temp warehouses, and running the order assets in process."""

from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml

from assets.outreach.outbox import value_names
from pipelines.definitions import (
    CAMPAIGNS_JOB,
    INGEST_JOB,
    OUTREACH_JOB,
    RANGE_END,
    RANGE_START,
    build_definitions,
    job_name,
    shop_job,
)
from pipelines.settings import ShopSettings, parse_settings
from reports.translations import OUTBOX_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ONLINE_RETAIL = SHARED_DATA / "online_retail_ii.parquet"


def _shop_raw(tmp_path: Path, overrides: dict) -> dict:
    return {
        "name": "test shop",
        "timezone": "Asia/Shanghai",
        "history_start": "2024-01-01",
        "history_end": "2024-12-31",
        "warehouse": str(tmp_path / "warehouse.duckdb"),
        "output": str(tmp_path / "out"),
        "source": {"kind": "synthetic", "seed": 7, "customers": 400},
    } | overrides


def shop(tmp_path: Path, **overrides) -> ShopSettings:
    """A shop on a warehouse in tmp_path: the small synthetic one unless a source is given."""
    return parse_settings(_shop_raw(tmp_path, overrides), tmp_path / "shop.yaml")


def shop_file(tmp_path: Path, **overrides) -> Path:
    """The settings file of `shop(tmp_path, **overrides)`, for processes that read REGULARS_CONFIG."""
    path = tmp_path / "shop.yaml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_shop_raw(tmp_path, overrides), allow_unicode=True))
    return path


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
    job = shop_job(settings, INGEST_JOB)
    tags = {RANGE_START: first, RANGE_END: last or first}
    with dg.DagsterInstance.ephemeral() as instance:
        return job.execute_in_process(instance=instance, tags=tags, raise_on_error=raise_on_error)


def table(settings: ShopSettings, name: str) -> pl.DataFrame:
    """A warehouse table in a stable order, without load times (they differ between runs, what was loaded does not)."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        frame = conn.sql(f"SELECT * FROM {name}").pl()
    return frame.drop("_loaded_ts", "loaded_ts", "first_loaded_ts", strict=False).sort(pl.all())


def read_outbox(path: Path, language: str = "zh") -> pl.DataFrame:
    """An outbox file (CSV cells as text) with the headers and coded values the warehouse has, where the shop's
    outreach `language` names them for people."""
    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    codes = {name: code for code, name in OUTBOX_COLUMNS.get(language, {}).items()}
    frame = frame.rename(codes, strict=False)
    names = value_names(language)
    return frame.with_columns(
        *(pl.col(c).replace({name: code for code, name in names[c].items()}) for c in frame.columns if c in names),
        *(
            pl.col(c).str.to_date()
            for c in ("contact_date", "due_date", "expected_next_date")
            if frame.schema.get(c) == pl.String
        ),
    )


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
            defs.resolve_job_def(job_name(settings, OUTREACH_JOB))
            .execute_in_process(instance=instance, partition_key="2024-10-15")
            .success
        )
        for event in ("double11-2023", "double11-2024"):
            assert (
                defs.resolve_job_def(job_name(settings, CAMPAIGNS_JOB))
                .execute_in_process(instance=instance, partition_key=event)
                .success
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


# Draws each distinct character of the page's text (SVG charts included) in the font its element asks
# for, and compares the pixels with a code point no font has (U+10FFFD): a character drawn the same is
# a missing glyph, the empty box a reader would see.
MISSING_GLYPHS = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const draw = (text, font) => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.font = "32px " + font;
    ctx.fillText(text, 4, 36);
    return ctx.getImageData(0, 0, 48, 48).data.join();
  };
  const boxes = {}, seen = new Set(), missing = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const font = getComputedStyle(node.parentElement).fontFamily;
    boxes[font] ??= draw("\\u{10FFFD}", font);
    for (const character of node.textContent) {
      if (/\\s/.test(character) || seen.has(font + character)) continue;
      seen.add(font + character);
      if (draw(character, font) === boxes[font]) missing.add(character);
    }
  }
  return [...missing].join("");
}"""


def open_in_chromium(path: Path, screenshot: Path, tables: tuple[str, ...] = (), texts: tuple[str, ...] = ()) -> dict:
    """A report opened in Debian's headless chromium as a reader would: console errors, requests, the
    characters drawn as empty boxes, the page's height, charts and headings, the rows of each table of
    `tables` and the text of each element matching `texts` (CSS selectors); a full-page screenshot."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it: apt-get install chromium fonts-noto-cjk)"
    errors, requests = [], []
    with sync_playwright() as playwright:
        flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(path.as_uri())
        page.screenshot(path=screenshot, full_page=True)
        seen = {
            "errors": errors,
            "requests": requests,
            "missing_glyphs": page.evaluate(MISSING_GLYPHS),
            "height": page.evaluate("document.body.scrollHeight"),
            "charts": page.locator("svg").count(),
            "headings": page.locator("h2").all_inner_texts(),
            "rows": {table: page.locator(f"{table} tr").count() for table in tables},
            "texts": {selector: page.locator(selector).all_inner_texts() for selector in texts},
        }
        browser.close()
    return seen
