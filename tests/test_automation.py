"""The one sequence (pipelines/automation.py): what the daemon's schedule and sensor run, morning by morning,
across a sales event, and what `regulars run` runs over the same days."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import polars as pl
import pytest

from pipelines.automation import due_steps, needs_loaded
from pipelines.cli import run_range
from pipelines.definitions import DAILY_JOB, RANGE_END, RANGE_START, build_definitions, job_name
from pipelines.operations import EVENT_ATTEMPTS, EVENT_STEP_TAG, SHOP_TAG, event_requests
from tests.conftest import read_outbox, shop, table

# build-up 02-27 .. 03-01, warm-up 03-02 .. 03-04, sprint 03-05, after-glow 03-06 .. 03-07
FLASH = {"id": "flash-2024", "sprint": ["2024-03-05", "2024-03-05"], "build_up_days": 4, "warm_up_days": 3,
         "after_glow_days": 2}  # fmt: skip
FIRST_CONTACT = {"warm_up": date(2024, 3, 2), "sprint": date(2024, 3, 5), "after_glow": date(2024, 3, 6)}
BACKFILLED, LAST = date(2024, 2, 24), date(2024, 3, 7)


def flash_shop(path):
    # a run over a range rebuilds history day by day and makes every day's lists, as the daily runs do
    return shop(path, history_end="2024-03-31", events={"presets": [], "custom": [FLASH]},
                source={"kind": "synthetic", "seed": 3, "customers": 600},
                lifecycle={"history_step_days": 1}, outreach={"lists_for_last_days": 100})  # fmt: skip


def test_each_step_is_due_once_the_orders_it_needs_are_loaded(tmp_path):
    settings = flash_shop(tmp_path)
    [event] = settings.calendar()

    def due(loaded_until: date, planned: dict | None = None, reviewed: frozenset = frozenset()) -> list[str]:
        return [step for _, step in due_steps(settings, date(2024, 1, 1), loaded_until, planned or {}, reviewed)]

    # Hand-worked from the phases above: the baseline needs its first day (02-27); a phase's list needs the
    # eve of its first contact day; the review needs the after-glow's last day (03-07).
    assert due(date(2024, 2, 26)) == []
    assert due(date(2024, 2, 27)) == ["build_up"]
    assert due(date(2024, 3, 1)) == ["warm_up"]
    assert due(date(2024, 3, 1), {"flash-2024": "warm_up"}) == []  # done already
    assert due(date(2024, 3, 4)) == ["sprint"]
    assert due(date(2024, 3, 5), {"flash-2024": "sprint"}) == ["after_glow"]
    assert due(date(2024, 3, 7), {"flash-2024": "after_glow"}) == ["review"]
    assert due(date(2024, 3, 31), {}, frozenset({"flash-2024"})) == []
    assert [needs_loaded(event, p) + timedelta(days=1) for p in FIRST_CONTACT] == list(FIRST_CONTACT.values())
    # events over before the first day loaded are left alone
    assert due_steps(settings, date(2024, 3, 8), date(2024, 3, 31), {}, frozenset()) == []


def test_an_event_step_is_asked_for_again_after_a_failed_run_then_given_up(tmp_path):
    settings = flash_shop(tmp_path)
    key = "flash-2024:build_up"

    @dg.op
    def killed():
        raise RuntimeError("its worker was killed")

    @dg.job
    def event_run():
        killed()

    with dg.DagsterInstance.ephemeral() as instance:
        loaded = {RANGE_START: "2024-02-24", RANGE_END: "2024-02-27"}  # up to the event's first day: baseline due
        assert (
            build_definitions(settings)
            .resolve_job_def(job_name(settings, "ingest"))
            .execute_in_process(instance=instance, tags=loaded)
            .success
        )
        for failed in range(EVENT_ATTEMPTS):
            requests, given_up = event_requests(instance, settings, "campaigns", "review")
            # a new run key each time: Dagster runs a sensor's run key once, whatever became of the run
            assert [r.run_key for r in requests] == [key if failed == 0 else f"{key}:retry{failed}"]
            assert given_up == []
            tags = {SHOP_TAG: settings.id, EVENT_STEP_TAG: key}
            assert not event_run.execute_in_process(instance=instance, tags=tags, raise_on_error=False).success
        requests, given_up = event_requests(instance, settings, "campaigns", "review")
        assert requests == []
        assert given_up == [f"{key} (its last {EVENT_ATTEMPTS} runs failed: re-run it once fixed)"]


def _daemon_morning(defs, settings, instance, morning: date) -> list[str]:
    """What the daemon does one morning: the schedule's tick (yesterday's daily run), then the events sensor's
    requests, each executed as the run it asks for. Returns the sensor's run keys."""
    zone = ZoneInfo(settings.timezone)
    tick = datetime.combine(morning, time(settings.operations.schedule_hour), tzinfo=zone)
    schedule = defs.resolve_schedule_def(f"{job_name(settings, DAILY_JOB)}_schedule")
    [daily] = schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
    ).run_requests
    assert daily.partition_key == (morning - timedelta(days=1)).isoformat()
    run = defs.resolve_job_def(job_name(settings, DAILY_JOB)).execute_in_process(
        instance=instance, partition_key=daily.partition_key, tags=daily.tags
    )
    assert run.success
    sensor = defs.resolve_sensor_def(f"{settings.id}__plan_and_review_events")
    requests = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    requests = [] if isinstance(requests, dg.SkipReason) else requests
    for request in requests:
        job = defs.resolve_job_def(request.job_name)
        assert job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=request.tags).success
    return [request.run_key for request in requests]


@pytest.fixture(scope="module")
def daemon_shop(tmp_path_factory):
    """A shop run by the daemon's logic alone: a backfill of the daily job to 02-24, then one morning at a time
    to the morning of 03-09 (which loads 03-08). Records, for each morning, the target lists' phases present."""
    settings = flash_shop(tmp_path_factory.mktemp("daemon"))
    defs = build_definitions(settings)
    present, requested = {}, {}
    with dg.DagsterInstance.ephemeral() as instance:
        backfill = {RANGE_START: "2024-01-01",
RANGE_END: BACKFILLED.isoformat()}  # fmt: skip
        assert (
            defs.resolve_job_def(job_name(settings, DAILY_JOB))
            .execute_in_process(instance=instance, tags=backfill)
            .success
        )
        morning = BACKFILLED + timedelta(days=2)
        while morning <= LAST + timedelta(days=1):
            requested[morning] = _daemon_morning(defs, settings, instance, morning)
            targets = table(settings, "outreach.campaign_targets")
            outbox = settings.output / "outbox" / "flash-2024" / "targets.csv"
            sent = set(read_outbox(outbox)["phase"]) if outbox.exists() else set()
            present[morning] = (set(targets["phase"]), sent)
            morning += timedelta(days=1)
    return settings, present, requested


def test_the_daemon_plans_each_phase_before_its_first_contact_day_and_reviews_the_event(daemon_shop):
    settings, present, requested = daemon_shop
    # the sensor asked for each step once, on the morning after the day it needs was loaded
    assert {day: keys for day, keys in requested.items() if keys} == {
        date(2024, 2, 28): ["flash-2024:build_up"],
        date(2024, 3, 2): ["flash-2024:warm_up"],
        date(2024, 3, 5): ["flash-2024:sprint"],
        date(2024, 3, 6): ["flash-2024:after_glow"],
        date(2024, 3, 8): ["flash-2024:review"],  # the morning after the after-glow's last day
    }
    for phase, first_day in FIRST_CONTACT.items():
        in_warehouse, in_outbox = present[first_day]
        assert phase in in_warehouse and phase in in_outbox, (phase, present[first_day])
        assert phase not in present[first_day - timedelta(days=1)][0]  # made as soon as it could be, not before
    assert (settings.output / "reports" / "review-flash-2024.en.html").exists()


def test_regulars_run_over_the_same_days_gives_the_same_warehouse(daemon_shop, tmp_path, monkeypatch):
    daemon, _, _ = daemon_shop
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    settings = flash_shop(tmp_path)
    assert run_range(settings, date(2024, 1, 1), LAST, echo=lambda *a, **k: None)
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        tables = sorted(".".join(t) for t in conn.sql("SELECT schema_name, table_name FROM duckdb_tables()").fetchall())
    assert len(tables) >= 25
    differ = []
    for name in tables:
        ours, theirs = table(settings, name), table(daemon, name)
        if name == "core.model_fits":
            # the daemon keeps the fit of each day it ran, a run over a range fits once, on its last day
            assert theirs["fit_date"].n_unique() == (LAST - BACKFILLED).days + 1
            theirs = theirs.filter(pl.col("fit_date") == LAST)
        if not ours.equals(theirs):
            differ.append((name, ours.join(theirs, on=ours.columns, how="anti", nulls_equal=True)))
    assert not differ, differ
