"""Dagster's SQLite event log, writing a run's asset events in batches.

A backfill over two years records one materialization per asset and day (dagster-io/dagster#31694).
The stock SQLite storage writes each in a transaction of its own, opening two databases every time:
about 11 ms an event, over a minute for the demo shop's history. This storage writes a batch of
them (Dagster hands over all materializations of one output at once) in one transaction per database,
and records a single "planned" event per asset for a run over a range of partitions instead of one
per partition. The tables and their rows are the stock ones: the UI reads them as usual.

`dagster.yaml` names it as the instance's `event_log_storage`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster import _check as check
from dagster._config import Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

# Dagster's run process buffers batched events only when this is set; it reads it at each event.
BATCH_SIZE_VARIABLE, BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE", "100000"


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """The stock SQLite event log (`$DAGSTER_HOME/history/runs`), with batched asset events."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise check.CheckError(
                    "regulars' event log lives in DAGSTER_HOME: set it (regulars uses data/dagster) and start again"
                )
            base_dir = os.path.join(home, "history", "runs")
        os.environ.setdefault(BATCH_SIZE_VARIABLE, BATCH_SIZE)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        return True

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        asset_events = []
        for event in events:
            if event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS:
                asset_events.append(event)
            else:
                self.store_event(event)
        if not asset_events:
            return
        rows = [self._event_to_row(event) for event in asset_events]
        for run_id in dict.fromkeys(event.run_id for event in asset_events):
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), [row for row in rows if row["run_id"] == run_id])
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            ids = [row[0] for row in inserted]
            self._store_asset_event_tags(conn, asset_events, ids)
            # The asset table keeps the latest event of each kind per asset: later ones overwrite.
            latest = {}
            for event, event_id in zip(asset_events, ids, strict=True):
                latest[(event.dagster_event.asset_key, event.dagster_event_type)] = (event, event_id)
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
