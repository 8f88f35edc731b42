"""A shop's settings: one YAML file, validated when it is loaded.

`load_settings()` reads `REGULARS_CONFIG` (default: the demo shop, `shop.yaml` at the
project root). Relative paths in a settings file are relative to that file's folder.
A wrong setting fails here, naming the key and what was expected.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import polars as pl
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from pipelines.calendar import CalendarError, Event, around, check, preset, with_overrides
from pipelines.rfm_classes import CLASS_CODES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_SHOP = PROJECT_ROOT / "shop.yaml"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


# The built-in audiences of an event's plan besides the classes (assets.campaigns.targets.audience).
EVENT_AUDIENCES = ("engaged", "missed", "new_buyers")
LIFECYCLE_STAGES = ("new", "active", "due", "at_risk", "churned")  # assets.customers.lifecycle.STAGES
# What a shop's own audience may set conditions on: the columns of the customer table the audiences read
# (assets.outreach.audiences.customer_table), each with its kind. A new column (a member tier, say) is one more line
# here and one more column there.
AUDIENCE_FIELDS = {
    "rfm_class": "text", "rfm_group": "text", "stage": "text", "main_category": "text", "first_channel": "text",
    "region": "text", "value_tier": "text", "risk_band": "text",
    "recency_days": "number", "frequency": "number", "monetary": "number", "r_score": "number", "f_score": "number",
    "m_score": "number", "orders": "number", "purchase_days": "number", "net_revenue": "number",
    "avg_order_value": "number", "tenure_days": "number", "cycle_days": "number", "p_alive": "number",
    "days_since_contact": "number",
    "acquired_on_event": "yes/no",
    "tags": "tags",
}  # fmt: skip
# text fields whose values are known: a value outside them is a typo
AUDIENCE_VALUES = {"rfm_class": CLASS_CODES, "stage": LIFECYCLE_STAGES, "risk_band": ("low", "medium", "high")}
# condition operators by kind of field; a plain value means `eq`, a list `in`
AUDIENCE_OPERATORS = {
    "text": ("eq", "ne", "in", "not_in"),
    "number": ("eq", "ne", "gt", "ge", "lt", "le"),
    "yes/no": ("eq",),
    "tags": ("has", "has_not"),
}


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


def _check_owner(owner: str) -> str:
    if not re.fullmatch(r"team:[\w-]+|[^@\s]+@[^@\s]+\.[^@\s]+", owner):
        raise ValueError(f"an owner is an email or team:name (as Dagster takes them), not {owner!r}")
    return owner


Owner = Annotated[str, AfterValidator(_check_owner)]


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
    product: str | None = None  # the product's name, shown in reports
    category: str | None = None
    status: str | None = None
    shipped_ts: str | None = None
    delivered_ts: str | None = None
    currency: str | None = None  # rows in another currency than the shop's are refused

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
    # class -> chance that a contacted customer of that class (at the event's baseline) buys once more
    # within the response window of a campaign list; none: the shop ignores its messages
    response_lift: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}

    @model_validator(mode="after")
    def _classes(self) -> SyntheticSource:
        for name in self.response_lift:
            if name not in CLASS_CODES:
                raise ValueError(f"response_lift: unknown class {name!r}; expected one of {', '.join(CLASS_CODES)}")
        return self


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
    decimal: Literal["auto", ".", ","] = "auto"  # auto: each number tells, and one that could be either is refused
    duplicates: Literal["auto", "keep", "drop"] = "auto"  # identical rows of a day; auto: drop with an order id
    columns: ColumnMapping
    cancellation: CancellationRule = CancellationRule()
    open_statuses: list[str] = []  # statuses of orders not completed yet (not revenue); the rest are completed
    completed_statuses: list[str] = []  # statuses of completed orders: named, so that no run warns of them
    open_lost_after_days: int | None = Field(None, gt=0)  # an order open this long on the last day loaded is lost


Source = Annotated[SyntheticSource | FileSource, Field(discriminator="kind")]


class RejectRules(_Strict):
    """When a source row is refused."""

    max_amount: float = Field(100_000, gt=0, description="a row worth more than this (either sign) is an outlier")


class CustomEvent(_Strict):
    """A shop's own event: its sprint, and the days of the phases around it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: str | None = None  # events of one kind are compared year to year; default: the id without its year
    label: str | None = None
    sprint: tuple[date, date]
    build_up_days: int = Field(21, ge=0)
    warm_up_days: int = Field(10, ge=0)
    after_glow_days: int = Field(7, ge=1)


class EventSettings(_Strict):
    """The sales calendar: presets for every year of history (and the next), the shop's own events,
    and phase dates overridden per event id."""

    presets: list[str] = ["618", "double11", "double12"]
    custom: list[CustomEvent] = []
    overrides: dict[str, dict[str, tuple[date, date]]] = {}
    growth_rate: float | None = None  # e.g. 0.1 for +10%; default: measured over the trailing quarter
    default_goals: dict[str, float] = {}  # goals for an event with no comparable one before it
    min_comparable_orders: int = Field(1, ge=1)  # an earlier event with fewer orders is never the comparable one
    # the planning band beside each goal (assets/campaigns/bands.py): these quantiles of this many simulated events
    band: tuple[float, float] = (0.1, 0.9)
    band_draws: int = Field(200, ge=50)
    # phase -> audiences to reach: RFM classes (at the event's baseline), engaged, missed, new_buyers
    plan: dict[str, list[str]] = {
        "build_up": [],  # profile and tag: core.rfm holds the classes and tags
        "warm_up": ["important_winback", "important_retain", "potential", "important_develop"],
        "sprint": ["engaged"],
        "after_glow": ["missed", "new_buyers"],
    }

    @model_validator(mode="after")
    def _plan(self) -> EventSettings:
        if not 0 < self.band[0] < self.band[1] < 1:
            raise ValueError(f"band: {list(self.band)}; expected two quantiles, 0 < low < high < 1, e.g. [0.1, 0.9]")
        for phase in self.plan:
            if phase not in ("build_up", "warm_up", "sprint", "after_glow"):
                raise ValueError(f"plan: unknown phase {phase!r}")
        return self  # the audiences are checked with the shop's own (ShopSettings._audiences_planned)


def _conditions(field: str, written: Any) -> list[tuple[str, str, Any]]:
    """A field's conditions as (field, operator, value): `{gt: 0.3, le: 0.9}` is two, a plain value `eq` (`has`
    for tags), a list `in` (`has`, every one, for tags)."""
    if isinstance(written, dict):
        return [(field, operator, value) for operator, value in written.items()]
    if AUDIENCE_FIELDS.get(field) == "tags":
        return [(field, "has", written)]
    return [(field, "in" if isinstance(written, list) else "eq", written)]


def _check_condition(field: str, operator: str, value: Any) -> None:
    """Raise naming what is wrong with one condition on a known field."""
    kind = AUDIENCE_FIELDS[field]
    if operator not in AUDIENCE_OPERATORS[kind]:
        expected = ", ".join(AUDIENCE_OPERATORS[kind])
        raise ValueError(f"unknown condition {operator!r} for a {kind} field; expected {expected}")
    values = value if isinstance(value, list) and (operator in ("in", "not_in") or kind == "tags") else [value]
    expected = {"text": str, "number": (int, float), "yes/no": bool, "tags": str}[kind]
    if not values or any(isinstance(v, bool) != (kind == "yes/no") or not isinstance(v, expected) for v in values):
        shown = {"text": "text", "number": "a number", "yes/no": "true or false", "tags": "a tag"}[kind]
        many = " (or a list of them)" if operator in ("in", "not_in") or kind == "tags" else ""
        raise ValueError(f"expected {shown}{many}, found {value!r}")
    unknown = [v for v in values if field in AUDIENCE_VALUES and v not in AUDIENCE_VALUES[field]]
    if unknown:
        raise ValueError(f"unknown value {unknown[0]!r}; expected one of {', '.join(AUDIENCE_VALUES[field])}")


class Audience(_Strict):
    """A shop's own audience (人群圈选): the customers that meet every condition of `where`, each a field of
    AUDIENCE_FIELDS with a value (equal to), a list (one of) or operators (`{gt: 0.3}`)."""

    label: str | None = None  # its name in lists and reports; default: its key
    where: dict[str, Any] = Field(min_length=1)
    daily: bool = False  # a list every day (outreach.audience_lists); else only in the event phases that name it

    def conditions(self) -> list[tuple[str, str, Any]]:
        return [condition for field, written in self.where.items() for condition in _conditions(field, written)]


def _check_audiences(audiences: dict[str, Audience]) -> dict[str, Audience]:
    """Every field known and every value of its kind, before anything runs; an error names the audience and field."""
    for name, audience in audiences.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in (*CLASS_CODES, *EVENT_AUDIENCES):
            raise ValueError(f"audience {name!r}: expected a name of lower-case letters, digits and _, not a built-in"
                             " audience (a class, engaged, missed, new_buyers)")  # fmt: skip
        for field, operator, value in audience.conditions():
            if field not in AUDIENCE_FIELDS:
                close = difflib.get_close_matches(field, AUDIENCE_FIELDS, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(AUDIENCE_FIELDS)}"
                raise ValueError(f"audience {name!r}, field {field!r}: not a field; {hint}")
            try:
                _check_condition(field, operator, value)
            except ValueError as exc:
                raise ValueError(f"audience {name!r}, field {field!r}: {exc}") from None
    return audiences


class RfmSettings(_Strict):
    lookback_days: int | None = Field(None, gt=0)  # frequency and monetary window in days; None: all history
    threshold: Literal["mean", "median", "fixed"] = "mean"
    # With threshold: fixed: high means at least this frequency / monetary, and an order
    # within this many days (per main category where given, else recency_days).
    recency_days: int = Field(90, gt=0)
    frequency: float = Field(2, gt=0)
    monetary: float = Field(500, gt=0)
    active_window_days: dict[str, int] = {}
    same_day_orders_once: bool = True
    monetary_measure: Literal["total", "average"] = "total"


class LifecycleSettings(_Strict):
    due_from: float = Field(0.9, gt=0)  # due from this share of a cycle after the last order...
    at_risk_after: float = Field(1.5, gt=0)  # ...at risk beyond 1.5 cycles...
    churned_after: float = Field(2.0, gt=0)  # ...churned beyond 2 cycles
    churned_after_days: int = Field(365, gt=0)  # or beyond this many days whatever the cycle
    default_cycle_days: float = Field(60, gt=0)  # when nobody in the shop has bought twice yet
    history_step_days: int = Field(7, ge=1)  # days between snapshots when a range rebuilds history

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleSettings:
        if not self.due_from < self.at_risk_after < self.churned_after:
            raise ValueError("expected due_from < at_risk_after < churned_after")
        return self


class CustomerIds(_Strict):
    """How a customer id is read, in the source and in opt-outs alike: trimmed (zero-width characters
    too), case-folded unless case matters, and missing when empty or one of `missing` (in any case)."""

    case_sensitive: bool = True
    missing: list[str] = ["null", "none", "nan", "n/a", "-"]

    def normalize(self, ids: pl.Expr) -> pl.Expr:
        ids = ids.str.replace_all(ZERO_WIDTH, "").str.strip_chars()
        return ids if self.case_sensitive else ids.str.to_lowercase()

    def is_missing(self, normalized: pl.Expr) -> pl.Expr:
        junk = [value.lower() for value in self.missing]
        return normalized.is_null() | (normalized == "") | normalized.str.to_lowercase().is_in(junk)


ZERO_WIDTH = "[\u200b\u200c\u200d\u2060\ufeff]"


class ControlSettings(_Strict):
    """Control groups: who each list holds out, to measure what its messages change."""

    share: float = Field(0.1, ge=0, lt=1)  # of every list, held out (not contacted, recorded)
    min_list_size: int = Field(100, ge=1)  # a smaller list holds out nobody (too few to tell anyway)
    global_share: float = Field(0.0, ge=0, lt=1)  # of all customers, held out of every list; 0: off
    seed: int = 0  # the shop's seed of the assignment hash
    # a campaign list's share follows the size it needs to tell (assets/campaigns/hold_outs.py) within these
    # bounds; unset: every list holds out `share`, and the reports still say what that can tell
    min_share: float | None = Field(None, ge=0, lt=1)
    max_share: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="after")
    def _bounds(self) -> ControlSettings:
        if (self.min_share is None) != (self.max_share is None):
            raise ValueError("min_share and max_share: set both or neither")
        if self.min_share is not None and self.min_share > self.max_share:
            raise ValueError(f"min_share {self.min_share} is above max_share {self.max_share}")
        return self


class OfferSettings(_Strict):
    """Offers by product role (analysis.product_roles) on every campaign and audience list."""

    products: int = Field(3, ge=1)  # products suggested to each customer
    deal_discount: float = Field(0.2, gt=0, lt=1)  # traffic and marginal products to churned and one-time buyers
    small_discount: float = Field(0.05, gt=0, lt=1)  # profit products to repeat customers, to keep them

    @model_validator(mode="after")
    def _small(self) -> OfferSettings:
        if not self.small_discount < self.deal_discount:
            raise ValueError("expected small_discount < deal_discount")
        return self


class OutreachSettings(_Strict):
    language: Literal["en", "zh"] = "zh"
    opt_out: list[str] = []  # customer ids never to contact
    opt_out_file: Path | None = None  # a CSV with a customer_id column, relative to the settings file
    frequency_cap_days: int = Field(7, ge=1)  # nobody gets two marketing messages within this many days
    cap_priority: Literal["campaign", "reminder"] = "campaign"  # the list that keeps a customer both would reach
    control: ControlSettings = ControlSettings()
    response_days: int = Field(14, ge=1)  # a list's response window: its contact day and the days after
    cost_per_message: dict[str, Annotated[float, Field(ge=0)]] = {}  # channel -> cost of one message; else 0
    coupon_cost: float = Field(0, ge=0)  # per redemption: a contacted customer buying in the window
    # a run over a longer range makes the day-by-day lists (reminders, care) for its last this many days only:
    # the lists whose response window (response_days) is still open, not years of lists that were never sent
    lists_for_last_days: int = Field(14, ge=1)
    # category as the export writes it -> its name in messages, in `language`; over the built-in names of the
    # synthetic shop's categories (reports.translations.CATEGORY_NAMES)
    category_names: dict[str, str] = {}
    offers: OfferSettings = OfferSettings()

    def opt_out_ids(self) -> list[str]:
        """The ids of `opt_out` and the file's, as written (read when the settings load: a bad file stops there)."""
        return [*self.opt_out, *(_read_opt_out_file(self.opt_out_file) if self.opt_out_file else [])]


def _read_opt_out_file(path: Path) -> list[str]:
    """The `customer_id` column of an opt-out CSV; a wrong file or row raises, naming the row (the header is row 1)."""
    where = f"outreach.opt_out_file: {path}"
    try:
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = list(csv.reader(file))
    except OSError as exc:
        raise ValueError(f"{where}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{where}: cannot read it (not UTF-8 text)") from None
    header = [name.strip() for name in rows[0]] if rows else []
    if "customer_id" not in header:
        raise ValueError(f"{where}: no customer_id column in its first row")
    column, ids = header.index("customer_id"), []
    for number, row in enumerate(rows[1:], start=2):
        if not row:  # a blank line
            continue
        if len(row) != len(header):
            raise ValueError(f"{where}, row {number}: {len(row)} fields where the header has {len(header)}")
        if not row[column].strip():
            raise ValueError(f"{where}, row {number}: the customer_id is empty")
        ids.append(row[column])
    return ids


class QualitySettings(_Strict):
    """When checks warn (the blocking ones stop bad data whatever these say)."""

    max_order_amount: float = Field(1_000_000, gt=0)  # an order worth more than this fails the clean-orders suite
    max_rejected_share: float = Field(0.05, ge=0, le=1)  # refused rows / rows in, per run
    share_min_rows: int = Field(100, ge=1)  # shares are judged over at least this many rows (a quiet day's bad row)
    max_class_shift_points: float = Field(10, gt=0)  # a class's share moving more than this many points
    quiet_day_min_orders: float = Field(5, ge=0)  # warn on a day with no orders when the median day has this many
    data_docs: Literal["on_failure", "always"] = "on_failure"  # when GX Data Docs are rebuilt


class OperationsSettings(_Strict):
    schedule_hour: int = Field(6, ge=0, le=23)  # the daily run, in the shop's zone, for yesterday
    schedule_minute: int = Field(0, ge=0, le=59)  # the daily run's minute past schedule_hour
    freshness_deadline_hour: int = Field(9, ge=0, le=23)  # yesterday's orders are late after this hour
    webhook_url: str | None = None  # failed runs are posted here (REGULARS_WEBHOOK_URL overrides); else logged
    # who answers for the shop's assets, as Dagster's UI shows them: emails or team:name
    owners: list[Owner] = ["team:data"]


RISK_BANDS = ("low", "medium", "high")
RiskBand = Literal["low", "medium", "high"]


class ValueSettings(_Strict):
    """The purchase and spend models behind core.customer_value, and their hold-out test."""

    model: Literal["bgnbd", "paretonbd"] = "bgnbd"  # purchase counts: BG/NBD, or Pareto/NBD
    unit: Literal["days", "weeks"] = "days"  # the time unit the models are fitted in
    annual_discount_rate: float = Field(0.1, ge=0, le=1)  # 12-month value is discounted at this yearly rate
    risk_high_below: float = Field(0.3, gt=0, lt=1)  # churn risk is high where P(alive) is below this...
    risk_low_from: float = Field(0.7, gt=0, lt=1)  # ...low from this, medium between
    high_value_share: float = Field(0.2, gt=0, le=1)  # high_value_at_risk: this top share by net spend, high risk
    holdout_days: int = Field(180, gt=0)  # the last days of history the hold-out test keeps from the fit
    min_repeat_buyers: int = Field(20, ge=2)  # fewer repeat buyers than this: no fit, and the reason why
    # repurchase reminders go to customers of these churn-risk bands only, by the latest fit on or before the day
    remind_risk_bands: list[RiskBand] = list(RISK_BANDS)
    # campaign win-back audiences (class important_winback) keep these bands only, by the latest fit before the event
    win_back_risk_bands: list[RiskBand] = list(RISK_BANDS)

    @model_validator(mode="after")
    def _bands(self) -> ValueSettings:
        if not self.risk_high_below < self.risk_low_from:
            raise ValueError("expected risk_high_below < risk_low_from")
        return self


class TierRule(_Strict):
    """Conditions that all hold, on R, F and M as core.rfm counts them and on points (`TierPoints`); none: always."""

    max_recency_days: int | None = Field(None, ge=0)  # R: an order within this many days
    min_frequency: float | None = Field(None, ge=0)  # F: at least this many orders (purchase days, as rfm counts)
    min_monetary: float | None = Field(None, ge=0)  # M: at least this much net spend (per rfm.monetary_measure)
    min_points: float | None = None  # at least this many points

    @property
    def always(self) -> bool:
        return all(value is None for value in self.model_dump().values())


class TierPoints(_Strict):
    """Points from R, F and M together: per_order * F + per_spend * M - per_idle_day * R."""

    per_order: float = Field(0, ge=0)
    per_spend: float = Field(1, ge=0)
    per_idle_day: float = Field(0, ge=0)


class TierText(_Strict):
    """A text in both report languages."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Tier(_Strict):
    """A member tier: its names, the rule to enter it, the rule to keep it and the days of grace before a
    customer who no longer keeps it goes down."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: TierText
    benefit: TierText | None = None  # what a member of this tier gets, named in messages
    entry: TierRule = TierRule()
    keep: TierRule | None = None  # default: the entry rule
    grace_days: int = Field(0, ge=0)

    @property
    def keep_rule(self) -> TierRule:
        return self.entry if self.keep is None else self.keep


def _check_ladder(tiers: list[Tier]) -> list[Tier]:
    ids = [tier.id for tier in tiers]
    if repeated := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"tier ids must differ; {', '.join(repeated)} is used twice")
    if tiers and not (tiers[0].entry.always and tiers[0].keep_rule.always):
        raise ValueError(
            f"the first tier ({tiers[0].id}) is every buyer's: it takes no entry or keep rule (the ladder goes up)"
        )
    return tiers


class ReportSettings(_Strict):
    language: Literal["en", "zh"] = "en"


class ShopSettings(_Strict):
    # the shop in a deployment of many: its assets' key prefix, its jobs' prefix, its runs' `regulars/shop` tag
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    name: str
    timezone: TimeZone = "Asia/Shanghai"
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    history_start: date
    history_end: date | None = None  # default: yesterday; the synthetic shop needs one
    warehouse: Path = DEFAULT_DATA_DIR / "warehouse.duckdb"
    source: Source
    rules: RejectRules = RejectRules()
    events: EventSettings = EventSettings()
    rfm: RfmSettings = RfmSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    value: ValueSettings = ValueSettings()
    order_value_tiers: list[float] = [100, 300, 1000]  # upper bounds; the last tier is open
    # member tiers, lowest first; none by default: a tier is a promise to customers that the shop makes
    tiers: Annotated[list[Tier], AfterValidator(_check_ladder)] = []
    tier_points: TierPoints = TierPoints()
    customer_ids: CustomerIds = CustomerIds()
    # above 1, the ingest also writes the clean orders split by customer into this many buckets (Parquet files
    # beside the warehouse) that the customer step can compute one at a time (assets/orders/buckets.py)
    buckets: int = Field(1, ge=1, le=4096)
    outreach: OutreachSettings = OutreachSettings()
    audiences: Annotated[dict[str, Audience], AfterValidator(_check_audiences)] = {}  # the shop's own (人群圈选)
    reports: ReportSettings = ReportSettings()
    quality: QualitySettings = QualitySettings()
    operations: OperationsSettings = OperationsSettings()
    output: Path = DEFAULT_DATA_DIR / "out"  # reports and outbox files; REGULARS_OUTPUT overrides it
    _opt_outs: frozenset[str] = PrivateAttr(frozenset())

    @property
    def opt_outs(self) -> frozenset[str]:
        """Customer ids never to contact, normalized as the source's ids are."""
        return self._opt_outs

    def key(self, table: dg.AssetKey) -> dg.AssetKey:
        """This shop's asset key of a warehouse table's key (`staging/orders` -> `demo/staging/orders`)."""
        return dg.AssetKey([self.id, *table.path])

    @property
    def audience_labels(self) -> dict[str, str]:
        """The shop's own audiences by name -> their label in lists and reports."""
        return {name: audience.label or name for name, audience in self.audiences.items()}

    @property
    def pool(self) -> str:
        """The concurrency pool of the steps that write this shop's warehouse: DuckDB takes one writer."""
        return f"warehouse_{self.id}"

    @property
    def source_timezone(self) -> str:
        """The zone of the source's timestamps that carry none."""
        return getattr(self.source, "timezone", None) or self.timezone

    @property
    def last_day(self) -> date:
        """The last day of history: history_end, or yesterday in the shop's zone."""
        return self.history_end or datetime.now(ZoneInfo(self.timezone)).date() - timedelta(days=1)

    def calendar(self) -> list[Event]:
        """Every event: presets for each year of history and the next, the shop's own, overridden."""
        years = range(self.history_start.year, self.last_day.year + 2)
        events = [preset(kind, year) for kind in self.events.presets for year in years]
        for custom in self.events.custom:
            kind = custom.kind or re.sub(r"[-_]?\d{4}$", "", custom.id)
            phases = around(custom.sprint, custom.build_up_days, custom.warm_up_days, custom.after_glow_days)
            events.append(check(Event(custom.id, kind, custom.label or custom.id, phases)))
        by_id = {event.id: event for event in events}
        for event_id, phases in self.events.overrides.items():
            if event_id not in by_id:
                raise CalendarError(f"events.overrides: no event {event_id!r}; events are {', '.join(by_id)}")
            by_id[event_id] = with_overrides(by_id[event_id], phases)
        return sorted(by_id.values(), key=lambda e: e.sprint)

    @model_validator(mode="after")
    def _audiences_planned(self) -> ShopSettings:
        known = {*CLASS_CODES, *EVENT_AUDIENCES, *self.audiences}
        for phase, names in self.events.plan.items():
            for name in names:
                if name not in known:
                    raise ValueError(f"events.plan.{phase}: unknown audience {name!r}; expected a class, engaged, "
                                     "missed, new_buyers or one of the shop's audiences")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _history(self) -> ShopSettings:
        if isinstance(self.source, SyntheticSource) and self.history_end is None:
            raise ValueError("history_end: the synthetic shop needs the last day to generate")
        if self.history_end is not None and self.history_end < self.history_start:
            raise ValueError("history_end is before history_start")
        if sorted(self.order_value_tiers) != self.order_value_tiers:
            raise ValueError("order_value_tiers: expected increasing upper bounds")
        try:
            self.calendar()
        except CalendarError as exc:
            raise ValueError(f"events: {exc}") from None
        ids = pl.DataFrame({"id": self.outreach.opt_out_ids()}, schema={"id": pl.String})
        normalized = ids.select(self.customer_ids.normalize(pl.col("id")))["id"]
        self._opt_outs = frozenset(normalized.filter(normalized != ""))
        return self


# The system's folders: nothing of a shop's goes in them, but in the folders of their own they keep for programs
# (/var/lib/<program>) and for temporary files; /private holds macOS's /etc, /var and /tmp.
SYSTEM_FOLDERS = tuple(Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc",
                                          "/run", "/sbin", "/sys", "/usr", "/var", "/private"))  # fmt: skip
OWN_FOLDERS_WITHIN = tuple(Path(p) for p in ("/var/lib", "/var/tmp", "/private/tmp", "/private/var/tmp",
                                              "/private/var/folders"))  # fmt: skip
# Folders shared by everyone's folders: a folder in them is fine, the folder itself is not
SHARED_FOLDERS = tuple(Path(p) for p in ("/home", "/root", "/opt", "/srv", "/mnt", "/media", "/tmp", "/Users"))


def _check_folder(key: str, path: Path) -> None:
    """Refuse to write into the root or a system folder, however the path gets there (`..`, a symbolic link):
    a typo there would scatter files over the machine."""
    resolved = path.resolve()
    inside = [folder for folder in SYSTEM_FOLDERS if resolved == folder or folder in resolved.parents]
    own = any(folder in resolved.parents for folder in OWN_FOLDERS_WITHIN)
    if resolved == Path(resolved.anchor) or resolved in (*SHARED_FOLDERS, *OWN_FOLDERS_WITHIN) or (inside and not own):
        shown = f"{path} (that is {resolved})" if resolved != path else str(path)
        raise SettingsError(f"{key}: {shown} is the root or a system folder; choose a folder of your own")


def _where(error: dict, raw: dict) -> str:
    # Drop the discriminator's tag ("source.file.columns" -> "source.columns"); a tier by its id ("tiers.gold").
    parts = [str(p) for p in error["loc"] if p not in ("synthetic", "file")]
    if parts[:1] == ["tiers"] and len(parts) > 1 and parts[1].isdigit():
        tier = raw["tiers"][int(parts[1])]
        parts[1] = str(tier["id"]) if isinstance(tier, dict) and tier.get("id") else parts[1]
    return ".".join(parts)


def _message(error: dict) -> str:
    if error["type"] == "missing" or (error["type"].endswith("_type") and error.get("input") is None):
        return "required, but missing"
    if error["type"].startswith("date") and "outside expected range" in error["msg"]:
        return f"{error['input']} is an impossible date"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(error["loc"][-1]), _setting_names(ShopSettings), n=1, cutoff=0.7)
        return "not a setting" + (f"; did you mean {close[0]!r}?" if close else "")
    return error["msg"].removeprefix("Value error, ")


def _setting_names(model: type[BaseModel]) -> set[str]:
    """Every key a settings file may use, at any depth."""
    names = set()
    for name, field in model.model_fields.items():
        names.add(name)
        for kind in (field.annotation, *getattr(field.annotation, "__args__", ())):
            for inner in (kind, *getattr(kind, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names |= _setting_names(inner)
    return names


class _TextDates(yaml.SafeLoader):
    """YAML without its own date parsing: `2025-11-31` reaches validation as text, which names the key."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_settings(raw: dict, origin: Path) -> ShopSettings:
    """Validate a settings mapping read from `origin`; relative paths resolve against its folder."""
    if not isinstance(raw, dict):
        raise SettingsError(f"{origin}: expected a mapping of settings, found {type(raw).__name__}")
    base = origin.parent
    raw = {"id": shop_id(origin)} | raw
    for key in ("warehouse", "output"):
        if key in raw:
            raw[key] = base / str(raw[key])
    if isinstance(raw.get("outreach"), dict) and raw["outreach"].get("opt_out_file"):
        raw["outreach"] = {**raw["outreach"], "opt_out_file": base / str(raw["outreach"]["opt_out_file"])}
    if isinstance(raw.get("source"), dict) and "path" in raw["source"]:
        raw["source"] = {**raw["source"], "path": str(base / str(raw["source"]["path"]))}
    try:
        settings = ShopSettings.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  - {_where(e, raw) + ': ' if e['loc'] else ''}{_message(e)}" for e in exc.errors()]
        raise SettingsError(f"{origin}: settings are wrong:\n" + "\n".join(lines)) from None
    for key, variable in (("warehouse", "REGULARS_WAREHOUSE"), ("output", "REGULARS_OUTPUT")):
        if os.environ.get(variable):
            settings = settings.model_copy(update={key: Path(os.environ[variable])})
    _check_folder("warehouse", settings.warehouse.parent)
    _check_folder("output", settings.output)
    return settings


def shop_id(origin: Path) -> str:
    """A shop's default id: its settings file's name, in lower case letters, digits and underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", origin.stem.lower()).strip("_")
    return slug if slug[:1].isalpha() else f"shop_{slug}"


def load_settings(path: str | Path | None = None) -> ShopSettings:
    """Read a shop's settings: `path`, else `REGULARS_CONFIG`, else the demo shop."""
    origin = Path(path or os.environ.get("REGULARS_CONFIG") or DEMO_SHOP).resolve()
    try:
        text = origin.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{origin}: cannot read the settings file ({exc.strerror})") from None
    try:
        raw = yaml.load(text, Loader=_TextDates)  # a SafeLoader: no tags that run code
    except yaml.YAMLError as exc:
        raise SettingsError(f"{origin}: not valid YAML: {exc}") from None
    return parse_settings(raw, origin)
