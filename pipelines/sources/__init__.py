"""Where orders come from: interchangeable Dagster resources that list their files and scan one.

`files()` lists what the source holds now, each file with its size and modification time, so
that a run can tell new and changed files from those it loaded before. `scan(name)` returns the
rows of one file: `_source` (the file), `_row` (its position there, from 1) and the fields the
source delivers, named as in the warehouse. Which fields, and how to read their times and
cancellations, each source says itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.settings import CancellationRule, ControlSettings, FileSource, ShopSettings, SyntheticSource
from pipelines.sources.exports import export_files, scan_export
from pipelines.sources.synthetic import CANCELLED_STATUSES, COMPLETED_STATUS, Responses, generate_orders


@dataclass(frozen=True)
class SourceLayout:
    """How to read a source's rows."""

    fields: tuple[str, ...]  # the warehouse fields the source delivers
    timezone: str  # of timestamps that carry no zone
    timestamp_format: str | None = None  # strftime-style; None: recognised from the values
    decimal: str = "auto"  # the decimal mark of numbers: ".", ",", or "auto" (each value tells, or is refused)
    duplicates: str = "drop"  # a row identical to an earlier one of its day: "drop" (refused) or "keep" (a purchase)
    rows: str = "orders"  # "orders": a row is an order; "lines": a row is an order line
    cancellation: CancellationRule = field(default_factory=CancellationRule)
    open_statuses: tuple[str, ...] = ()  # orders not completed yet: kept, status open, not revenue
    completed_statuses: tuple[str, ...] = ()  # statuses the settings name as completed (the unnamed are too)
    columns: dict[str, str] = field(default_factory=dict)  # field -> source column, for messages

    def named_statuses(self) -> set[str]:
        """The statuses the settings say how to treat (cancelled, open or completed)."""
        return {*self.cancellation.status_in, *self.open_statuses, *self.completed_statuses}


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, as the file system describes it: a change in size or time is a new version."""

    name: str
    size: int
    modified_ts: datetime


class OrderSource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def files(self) -> list[SourceFile]:
        """The files the source holds now."""

    @abstractmethod
    def scan(self, name: str) -> pl.LazyFrame:
        """The rows of one file: `_source`, `_row` and the delivered fields."""

    @property
    @abstractmethod
    def layout(self) -> SourceLayout:
        """How to read the rows `scan` returns."""


class SyntheticShop(OrderSource):
    """The built-in demo shop, generated in memory (the same seed, the same orders)."""

    seed: int
    customers: int
    start: str
    end: str
    timezone: str
    dirty_share: float = 0.005
    # how it answers campaigns (see synthetic.Responses): class -> lift; window; "draw|baseline|contact" per list
    response_lift: dict[str, float] = {}
    response_days: int = 14
    campaign_lists: list[str] = []
    control_share: float = 0.1
    control_global_share: float = 0.0
    control_seed: int = 0

    def files(self) -> list[SourceFile]:
        # One generated "file", whose settings are its version: the same settings, the same rows.
        end = datetime.combine(date.fromisoformat(self.end), datetime.min.time())
        return [SourceFile(f"synthetic(seed={self.seed})", self.customers, end)]

    def scan(self, name: str) -> pl.LazyFrame:
        orders = _generated(self.seed, self.customers, self.start, self.end, self.dirty_share, self.responses())
        return orders.lazy().select(
            pl.lit(name).alias("_source"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row"),
            pl.all(),
        )

    def responses(self) -> Responses | None:
        if not self.response_lift:
            return None
        lists = tuple(
            (draw, date.fromisoformat(baseline), date.fromisoformat(contact))
            for draw, baseline, contact in (entry.split("|") for entry in self.campaign_lists)
        )
        control = ControlSettings(share=self.control_share, global_share=self.control_global_share,
                                  seed=self.control_seed)  # fmt: skip
        return Responses(tuple(sorted(self.response_lift.items())), self.response_days, lists, control)

    @property
    def layout(self) -> SourceLayout:
        return SourceLayout(
            fields=(
                "order_id",
                "customer_id",
                "order_ts",
                "amount",
                "items",
                "channel",
                "region",
                "sku",
                "product",
                "category",
                "status",
                "shipped_ts",
                "delivered_ts",
            ),  # fmt: skip
            timezone=self.timezone,
            timestamp_format="%Y-%m-%d %H:%M:%S",
            decimal=".",
            cancellation=CancellationRule(status_in=list(CANCELLED_STATUSES)),
            completed_statuses=(COMPLETED_STATUS,),
        )


class FileExport(OrderSource):
    """Order exports on disk (CSV, Parquet, Excel), mapped to the warehouse's fields."""

    export: FileSource
    shop_timezone: str

    def files(self) -> list[SourceFile]:
        return [
            SourceFile(name, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None))
            for name, path in self._paths().items()
            for stat in [path.stat()]
        ]

    def scan(self, name: str) -> pl.LazyFrame:
        return scan_export(self._paths()[name], self.export, name)

    def _paths(self) -> dict[str, Path]:
        base, files = export_files(self.export.path)
        return {str(path.relative_to(base)): path for path in files}

    @property
    def layout(self) -> SourceLayout:
        columns = self.export.columns.mapped()
        return SourceLayout(
            fields=tuple(columns),
            timezone=self.export.timezone or self.shop_timezone,
            timestamp_format=self.export.timestamp_format,
            decimal=self.export.decimal,
            # without an order id, two identical rows are two purchases (the same thing bought twice that day)
            duplicates=("drop" if "order_id" in columns else "keep")
            if self.export.duplicates == "auto"
            else self.export.duplicates,
            rows=self.export.rows,
            cancellation=self.export.cancellation,
            open_statuses=tuple(self.export.open_statuses),
            completed_statuses=tuple(self.export.completed_statuses),
            columns=columns,
        )


@lru_cache(maxsize=1)  # a run scans the generated shop once per chunk of days: generate it once
def _generated(
    seed: int, customers: int, start: str, end: str, dirty_share: float, responses: Responses | None
) -> pl.DataFrame:
    return generate_orders(seed, customers, date.fromisoformat(start), date.fromisoformat(end), dirty_share, responses)


def order_source(settings: ShopSettings) -> OrderSource:
    """The source resource a shop's settings describe."""
    source = settings.source
    if isinstance(source, SyntheticSource):
        return SyntheticShop(
            seed=source.seed,
            customers=source.customers,
            start=settings.history_start.isoformat(),
            end=settings.history_end.isoformat(),
            timezone=settings.timezone,
            dirty_share=source.dirty_share,
            response_lift=source.response_lift,
            response_days=settings.outreach.response_days,
            campaign_lists=[
                f"{event.id}/{phase}|{event.start}|{event.phases[phase][0]}"
                for event in settings.calendar()
                for phase, audiences in settings.events.plan.items()
                if audiences and phase != "build_up" and event.phases[phase][0] <= settings.last_day
            ],
            # lists sized to tell hold out up to max_share: only customers beyond every list's control group answer
            control_share=settings.outreach.control.max_share or settings.outreach.control.share,
            control_global_share=settings.outreach.control.global_share,
            control_seed=settings.outreach.control.seed,
        )
    return FileExport(export=source, shop_timezone=settings.timezone)
