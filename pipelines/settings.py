"""A shop's settings: one YAML file, validated when it is loaded.

`load_settings()` reads `REGULARS_CONFIG` (default: the demo shop, `shop.yaml` at the
project root). Relative paths in a settings file are relative to that file's folder.
A wrong setting fails here, naming the key and what was expected.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_SHOP = PROJECT_ROOT / "shop.yaml"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class SettingsError(ValueError):
    """A settings file that cannot be used, with every key that is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StrictConfig(dg.Config):
    """Settings that a Dagster resource also carries as its config."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; expected an IANA name such as Asia/Shanghai") from None
    return name


TimeZone = Annotated[str, AfterValidator(_check_timezone)]


class ColumnMapping(_StrictConfig):
    """Which column of the export holds each field the warehouse needs."""

    order_id: str | None = None
    customer_id: str
    order_ts: str
    amount: str | None = None
    quantity: str | None = None
    unit_price: str | None = None
    items: str | None = None
    channel: str | None = None
    region: str | None = None
    sku: str | None = None
    category: str | None = None
    status: str | None = None
    shipped_ts: str | None = None
    delivered_ts: str | None = None

    @model_validator(mode="after")
    def _money(self) -> ColumnMapping:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError("map either `amount`, or both `quantity` and `unit_price`")
        return self

    def mapped(self) -> dict[str, str]:
        """Warehouse field -> source column, for the fields this export has."""
        return {field: column for field, column in self.model_dump().items() if column is not None}


class CancellationRule(_StrictConfig):
    """How a source marks a cancelled or refunded order."""

    order_id_prefix: str | None = None
    status_in: list[str] = []
    negative_quantity: bool = False


class SyntheticSource(_Strict):
    """The built-in demo shop: deterministic, the same seed gives the same orders."""

    kind: Literal["synthetic"]
    seed: int = 42
    customers: int = Field(20_000, gt=0)
    dirty_share: float = Field(0.005, ge=0, lt=0.5)


class FileSource(_StrictConfig):
    """Order exports: CSV (UTF-8 or GB18030/GBK), Parquet or Excel; a file, folder or glob."""

    kind: Literal["file"]
    path: str
    format: Literal["auto", "csv", "parquet", "xlsx"] = "auto"
    encoding: Literal["utf-8", "gb18030", "gbk"] = "utf-8"
    delimiter: str = ","
    sheet: str | None = None
    rows: Literal["orders", "lines"] = "orders"
    timezone: TimeZone | None = None
    timestamp_format: str | None = None
    columns: ColumnMapping
    cancellation: CancellationRule = CancellationRule()


Source = Annotated[SyntheticSource | FileSource, Field(discriminator="kind")]


class CleaningRules(_Strict):
    """When a source row is refused."""

    max_amount: float = Field(100_000, gt=0, description="a row worth more than this (either sign) is an outlier")


class ShopSettings(_Strict):
    name: str
    timezone: TimeZone = "Asia/Shanghai"
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    history_start: date
    history_end: date | None = None  # default: yesterday; the synthetic shop needs one
    warehouse: Path = DEFAULT_DATA_DIR / "warehouse.duckdb"
    source: Source
    rules: CleaningRules = CleaningRules()

    @property
    def source_timezone(self) -> str:
        """The zone of the source's timestamps that carry none."""
        return getattr(self.source, "timezone", None) or self.timezone

    @model_validator(mode="after")
    def _history(self) -> ShopSettings:
        if isinstance(self.source, SyntheticSource) and self.history_end is None:
            raise ValueError("history_end: the synthetic shop needs the last day to generate")
        if self.history_end is not None and self.history_end < self.history_start:
            raise ValueError("history_end is before history_start")
        return self


def _where(error: dict) -> str:
    # Drop the discriminator's tag ("source.file.columns" -> "source.columns").
    parts = [str(p) for p in error["loc"] if p not in ("synthetic", "file")]
    return ".".join(parts) or "(top level)"


def _message(error: dict) -> str:
    if error["type"] == "missing" or (error["type"].endswith("_type") and error.get("input") is None):
        return "required, but missing"
    return error["msg"].removeprefix("Value error, ")


def parse_settings(raw: dict, origin: Path) -> ShopSettings:
    """Validate a settings mapping read from `origin`; relative paths resolve against its folder."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{origin}: expected a mapping of settings, found {type(raw).__name__}")
    base = origin.parent
    raw = dict(raw)
    if "warehouse" in raw:
        raw["warehouse"] = base / str(raw["warehouse"])
    if isinstance(raw.get("source"), dict) and "path" in raw["source"]:
        raw["source"] = {**raw["source"], "path": str(base / str(raw["source"]["path"]))}
    try:
        settings = ShopSettings.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  - {_where(e)}: {_message(e)}" for e in exc.errors()]
        raise SettingsError(f"{origin}: settings are wrong:\n" + "\n".join(lines)) from None
    override = os.environ.get("REGULARS_WAREHOUSE")
    if override:
        settings = settings.model_copy(update={"warehouse": Path(override)})
    return settings


def load_settings(path: str | Path | None = None) -> ShopSettings:
    """Read a shop's settings: `path`, else `REGULARS_CONFIG`, else the demo shop."""
    origin = Path(path or os.environ.get("REGULARS_CONFIG") or DEMO_SHOP).resolve()
    try:
        text = origin.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{origin}: cannot read the settings file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{origin}: not valid YAML: {exc}") from None
    return parse_settings(raw, origin)
