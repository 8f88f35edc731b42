"""Dagster's SQLite event log, writing a run's asset events in batches; its run storage, reusing connections.

A backfill over two years records one materialization per asset and day (dagster-io/dagster#31694).
The stock SQLite storage writes each in a transaction of its own, creating an engine and opening the
database every time: about 5-11 ms an event, over a minute for the demo shop's history. This storage

- writes a batch of them (Dagster hands over all materializations of one output at once) in one
  transaction per database;
- records a single "planned" event per asset for a run over a range of partitions instead of one
  per partition, and plans a check's evaluation for every day of a range in one statement;
- starts a run's database as a copy of an empty one instead of creating its tables and stamping its
  schema version each time (a quarter of a second a run);
- keeps the index's and the current run's databases open between events, with SQLite's
  `synchronous=NORMAL`, which in WAL mode (Dagster's) cannot corrupt the file but may lose the
  last events on a power cut: about 2 ms an event instead of 5-11;
- hands a pool slot freed while a step was queueing for it to the queue (see `claim_concurrency_slot`).

The tables and their rows are the stock ones: the UI reads them as usual.

`dagster.yaml` names them as the instance's `event_log_storage` and `run_storage`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property

import sqlalchemy as db
from dagster import _check as check
from dagster._config import Field, StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster.version import __version__ as dagster_version

# This module subclasses Dagster's private SQLite storage: the Dagster release it was checked against. An upgrade
# fails tests/test_run_cost.py until the storage is checked again (tests, bench/backfill.py) and this is moved.
CHECKED_WITH_DAGSTER = "1.13.27"
# Dagster's run process buffers batched events only when this is set; it reads it at each event.
BATCH_SIZE_VARIABLE, BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE", "100000"
OPEN_DATABASES = 2  # the index and the run being written


class PooledSqliteRunStorage(SqliteRunStorage):
    """The stock SQLite run storage (`$DAGSTER_HOME/history/runs.db`), reusing its connections: the stock one
    creates an engine for each of the thirty-odd queries of a small run."""

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls.from_local(base_dir=config_value.get("base_dir") or _home("history"), inst_data=inst_data)

    @cached_property
    def _engine(self) -> db.Engine:
        return db.create_engine(self._conn_string, connect_args={"check_same_thread": False})

    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if "_engine" in self.__dict__:
            self._engine.dispose()
        super().dispose()


def _home(*parts: str) -> str:
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise check.CheckError("regulars' Dagster storage lives in DAGSTER_HOME: set it (regulars uses data/dagster)")
    return os.path.join(home, *parts)


def _replace_atomically(source: str, target: str) -> None:
    """Copy source to target so that no reader ever sees half a file."""
    scratch = f"{target}.{os.getpid()}"
    shutil.copyfile(source, scratch)
    os.replace(scratch, target)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """The stock SQLite event log (`$DAGSTER_HOME/history/runs`), with batched asset events."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        base_dir = base_dir or _home("history", "runs")
        os.environ.setdefault(BATCH_SIZE_VARIABLE, BATCH_SIZE)
        self._engines: dict[str, db.Engine] = {}
        super().__init__(base_dir, inst_data=inst_data)

    def claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None):
        """Dagster's claim, less its lost wake-up: a step that found no free slot and then queued was never
        given the slot its holder freed in between (the holder hands slots only to steps already queued),
        and waited forever with the slot free; 1 in 9 pairs of concurrent `regulars run`, 1 in 20 pairs of
        tiny runs. A queued step now takes a free slot itself whenever it asks again."""
        status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        if not status.is_assigned and self.has_unassigned_slots(concurrency_key):
            self.assign_pending_steps([concurrency_key])  # the first in the queue, as a freed slot would
            status = super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)
        return status

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # ty: ignore[invalid-method-override]
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        with self._db_lock:
            engine = self._engines.get(shard) or self._open(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _open(self, shard: str) -> db.Engine:
        new_run = shard != INDEX_SHARD_NAME and not os.path.exists(self.path_for_shard(shard))
        if new_run:  # a copy of an empty run database: creating its tables each time took a quarter second
            _replace_atomically(self._run_template(), self.path_for_shard(shard))
        engine = self._engine(self.conn_string_for_shard(shard))
        db.event.listen(engine, "connect", lambda dbapi_conn, _: dbapi_conn.execute("PRAGMA synchronous=NORMAL"))
        if shard not in self._initialized_dbs:
            if not new_run:
                self._initdb(engine)
            self._initialized_dbs.add(shard)
        while len(self._engines) >= OPEN_DATABASES:  # an older run's database: close it
            stale = next(name for name in self._engines if name != INDEX_SHARD_NAME)
            self._engines.pop(stale).dispose()
        self._engines[shard] = engine
        return engine

    @staticmethod
    def _engine(url: str) -> db.Engine:
        return db.create_engine(  # used under self._db_lock, one thread at a time
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        )

    def _run_template(self) -> str:
        """An empty run database of this Dagster version, made once (beside the runs' folder)."""
        path = os.path.join(os.path.dirname(self._base_dir), f"empty-run-{dagster_version}.db")
        if not os.path.exists(path):
            scratch = f"{path}.{os.getpid()}"
            engine = self._engine(f"sqlite:///{scratch}")
            self._initdb(engine)
            engine.dispose()  # the last connection checkpoints the WAL into the file
            os.replace(scratch, path)
        return path

    def _close_all(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def wipe(self) -> None:  # deletes the run databases: none may stay open
        self._close_all()
        super().wipe()

    def dispose(self) -> None:
        self._close_all()
        super().dispose()

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

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """As the stock storage does, a row per partition, but the event serialized once and inserted
        as one executemany (the stock code serializes it and compiles a VALUES clause per day)."""
        planned = event.dagster_event.event_specific_data
        keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in keys])
