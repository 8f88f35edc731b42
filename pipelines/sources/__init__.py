"""Where orders come from: interchangeable Dagster resources with one method, `read`.

`read()` returns every row of the source: `_source` (which file or generator), `_row`
(its position there, from 1) and the fields the source delivers, named as in the
warehouse. Which fields, and how to read their times and cancellations, each source
says itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import polars as pl

from pipelines.settings import CancellationRule, FileSource, ShopSettings, SyntheticSource
from pipelines.sources.exports import read_exports
from pipelines.sources.synthetic import CANCELLED_STATUSES, generate_orders


@dataclass(frozen=True)
class SourceLayout:
    """How to read a source's rows."""

    fields: tuple[str, ...]  # the warehouse fields the source delivers
    timezone: str  # of timestamps that carry no zone
    timestamp_format: str | None = None  # strftime-style; None: recognised from the values
    rows: str = "orders"  # "orders": a row is an order; "lines": a row is an order line
    cancellation: CancellationRule = field(default_factory=CancellationRule)
    columns: dict[str, str] = field(default_factory=dict)  # field -> source column, for messages


class OrderSource(dg.ConfigurableResource, ABC):
    @abstractmethod
    def read(self) -> pl.DataFrame:
        """Every source row: `_source`, `_row` and the delivered fields."""

    @property
    @abstractmethod
    def layout(self) -> SourceLayout:
        """How to read the rows `read` returns."""


class SyntheticShop(OrderSource):
    """The built-in demo shop, generated in memory (the same seed, the same orders)."""

    seed: int
    customers: int
    start: str
    end: str
    timezone: str
    dirty_share: float = 0.005

    def read(self) -> pl.DataFrame:
        orders = generate_orders(
            self.seed, self.customers, date.fromisoformat(self.start), date.fromisoformat(self.end), self.dirty_share
        )
        return orders.select(
            pl.lit(f"synthetic(seed={self.seed})").alias("_source"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row"),
            pl.all(),
        )

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
            cancellation=CancellationRule(status_in=list(CANCELLED_STATUSES)),
        )


class FileExport(OrderSource):
    """Order exports on disk (CSV, Parquet, Excel), mapped to the warehouse's fields."""

    export: FileSource
    shop_timezone: str

    def read(self) -> pl.DataFrame:
        return read_exports(self.export)

    @property
    def layout(self) -> SourceLayout:
        columns = self.export.columns.mapped()
        return SourceLayout(
            fields=tuple(columns),
            timezone=self.export.timezone or self.shop_timezone,
            timestamp_format=self.export.timestamp_format,
            rows=self.export.rows,
            cancellation=self.export.cancellation,
            columns=columns,
        )


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
        )
    return FileExport(export=source, shop_timezone=settings.timezone)
