"""`regulars`: the pipeline for a range of days, through Dagster, from the command line.

The CLI runs the same jobs, with the same selections, as the daemon: the shop's daily job over the range (its
orders and everything downstream), then each sales event's step that pipelines/automation.py says is due. Runs
execute in this process against the Dagster instance in `DAGSTER_HOME` (default `data/dagster` under the
project), so they show in `dagster dev` like any other run, under the shop's own assets.
"""

import fcntl
import os
import re
import shutil
import sqlite3
import sys
import time
import uuid
import warnings
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import dagster as dg
import sqlalchemy
import yaml
from dagster import BetaWarning

from assets.campaigns import GOALS
from assets.reports import EVENT_REVIEW
from pipelines.automation import REVIEW, due_steps, planned_through, reviews_alone
from pipelines.definitions import (
    CAMPAIGNS_JOB,
    DAILY_JOB,
    RANGE_END,
    RANGE_START,
    REPORTS_JOB,
    REVIEW_JOB,
    SHOPS_FILE,
    build_definitions,
    dagster_home,
    job_name,
)  # fmt: skip
from pipelines.operations import BUCKET_RUN_TAG, bucket_run_config, bucket_stages, due_bucket_runs
from pipelines.progress import heartbeat
from pipelines.recovery import clean_up_after_crashes, process_tags, waiting_for
from pipelines.settings import PROJECT_ROOT, SettingsError, ShopSettings, load_settings
from pipelines.sources.exports import MalformedExportError
from pipelines.warehouse import Warehouse, loaded_until, read_table


def dagster_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, or data/dagster; given the project's dagster.yaml if it has none."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    # Two first runs at once would both create the home's databases, and one would fail.
    with (home / ".create.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / "dagster.yaml").exists():
            shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        try:
            return dg.DagsterInstance.get()
        except (dg.DagsterInvariantViolationError, yaml.YAMLError, ValueError) as exc:
            raise click.ClickException(
                f"the Dagster home {home} cannot be used: its dagster.yaml cannot be read"
                f" ({str(exc).splitlines()[0]}); delete {home / 'dagster.yaml'} to get the project's again"
            ) from None


# SQLite's words for a database it cannot write (a full disk, a read-only folder), not a damaged one
CANNOT_WRITE = ("disk I/O error", "database or disk is full", "readonly database", "unable to open database file")


@contextmanager
def dagster_home_in_use():
    """A Dagster home that cannot be used, while a command creates or writes it (read-only, full, damaged), stops
    the command with one line naming it, the cause and the fix, instead of a traceback."""
    home = dagster_home()
    fix = "free some space there or make it writable, or choose another folder (DAGSTER_HOME); then run again"
    try:
        yield
    except OSError as exc:
        if not exc.filename or not Path(exc.filename).resolve().is_relative_to(home):
            raise
        trouble = f"{exc.strerror} ({exc.filename}); {fix}"
    except (sqlalchemy.exc.DBAPIError, sqlite3.Error) as exc:
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        if any(words in cause for words in CANNOT_WRITE):
            trouble = f"it cannot be written ({cause}); {fix}"
        else:
            trouble = (
                f"a run history database there is damaged ({cause}); move {home / 'history'} and"
                f" {home / 'schedules'} aside and run again (the warehouse keeps its data)"
            )
    else:
        return
    raise click.ClickException(f"the Dagster home {home} cannot be used: {trouble}")


class _Commands(click.Group):
    """The commands, each with its Dagster home's troubles in one line (dagster_home_in_use)."""

    def invoke(self, ctx: click.Context):
        with dagster_home_in_use():
            return super().invoke(ctx)


def register_shop(config: str | None) -> None:
    """Remember a shop's settings file in the Dagster home, so that `dagster dev` there shows its assets too."""
    if not config:
        return
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    listed = home / SHOPS_FILE
    path = str(os.path.abspath(config))
    with listed.open("a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        if path not in file.read().split():
            file.write(path + "\n")


def default_range(settings: ShopSettings) -> tuple[date, date]:
    """All of history: to `history_end`, or to yesterday in the shop's zone."""
    yesterday = datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    return settings.history_start, settings.history_end or yesterday


def run_range(settings: ShopSettings, first: date, last: date, echo=click.echo, language: str | None = None) -> bool:
    """The daily job over first..last, then every event step due (pipelines/automation.py), as Dagster runs."""
    if first < settings.history_start:
        raise click.BadParameter(f"{first} is before history_start ({settings.history_start})", param_hint="--from")
    if last > settings.last_day:
        raise click.BadParameter(
            f"{last} is after the last day of history ({settings.last_day}): orders are loaded up to it",
            param_hint="--to",
        )
    if last < first:
        raise click.BadParameter(f"{last} is before {first}", param_hint="--to")
    echo(f"{settings.name}: {first} .. {last} ({(last - first).days + 1} days), warehouse {settings.warehouse}")
    defs, instance = build_definitions(settings), dagster_instance()
    snapshot = {"as_of": last.isoformat(), "history_since": first.isoformat()}
    config = {"ops": {f"{settings.id}__customer_snapshot": {"config": snapshot}}}
    config |= report_config(f"{settings.id}__reports__shop_overview", language=language)
    daily = ("Orders, customers, outreach and the overview", DAILY_JOB,
             {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}, config)  # fmt: skip
    reports = run_steps(settings, defs, instance, [daily], echo)
    if reports is None:
        return False
    events = [e for e in settings.calendar() if e.start <= last and e.end >= first]
    planned = planned_through(instance, settings.key(GOALS), events)
    reviewed = instance.get_materialized_partitions(settings.key(EVENT_REVIEW))
    steps = [
        (f"Event {event.label}: " + ("results and review" if step == REVIEW else f"plan through {step}"),
         REVIEW_JOB if reviews_alone(settings, step, planned.get(event.id)) else CAMPAIGNS_JOB,
         {"dagster/partition": event.id}, report_config(f"{settings.id}__reports__event_review", language=language))
        for event, step in due_steps(settings, first, last, planned, set(reviewed)) if event in events
    ]  # fmt: skip
    event_reports = run_steps(settings, defs, instance, steps, echo, first_number=2)
    if event_reports is None:
        return finish(instance, None, echo)
    if settings.buckets > 1 and run_buckets(settings, defs, instance, echo, first_number=2 + len(steps)) is None:
        return finish(instance, None, echo)
    return finish(instance, reports + event_reports, echo)


def run_buckets(
    settings: ShopSettings, defs: dg.Definitions, instance: dg.DagsterInstance, echo=click.echo, first_number: int = 1
) -> list[str] | None:
    """The shop's bucket step in process, run for run as the daemon's sensor requests it (`due_bucket_runs`): each
    stage's due runs, stage after stage. None on a failure."""
    stages = bucket_stages(defs.resolve_all_asset_specs())
    number = first_number
    for _ in stages:
        due = due_bucket_runs(instance, settings, stages)
        steps = [
            (f"Customer buckets: {', '.join(key.path[-1] for key in run.stage.keys)}"
             + (f" of bucket {run.partition}" if run.partition else ""), run.stage.job,
             {BUCKET_RUN_TAG: run.key, **({"dagster/partition": run.partition} if run.partition else {})},
             bucket_run_config(instance, settings, run.stage))
            for run in due
        ]  # fmt: skip
        if run_steps(settings, defs, instance, steps, echo, first_number=number) is None:
            return None
        number += len(steps)
    return []


def report_config(op: str, **config) -> dict:
    """Run config for a report asset's op, without the options left unset."""
    given = {key: value for key, value in config.items() if value is not None}
    return {"ops": {op: {"config": given}}} if given else {}


def run_overview(
    settings: ShopSettings, first: date | None, last: date | None, language: str | None, echo=click.echo
) -> bool:
    """Render the shop overview for a period (default: the 12 months to the customers' as-of date)."""
    if first and last and last < first:
        raise click.BadParameter(f"{last} is before {first}", param_hint="--to")
    config = report_config(
        f"{settings.id}__reports__shop_overview", language=language, period_from=first and first.isoformat(),
        period_to=last and last.isoformat(),
    )  # fmt: skip
    steps = [("Reports: shop overview", REPORTS_JOB, {}, config)]
    instance = dagster_instance()
    return finish(instance, run_steps(settings, build_definitions(settings), instance, steps, echo), echo)


def run_event_review(settings: ShopSettings, event_id: str, echo=click.echo, language: str | None = None) -> bool:
    """Review one event (planning it first if it never was), as a Dagster run."""
    events = {event.id: event for event in settings.calendar()}
    if event_id not in events:
        raise click.BadParameter(f"no event {event_id!r}; events are {', '.join(events)}", param_hint="EVENT")
    event = events[event_id]
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        loaded = loaded_until(conn)
        goals = read_table(conn, "campaigns.goals", event_id=event_id)
    if loaded is None or loaded < event.end:
        raise click.ClickException(
            f"{event.label}'s after-glow ends {event.end}, but orders are loaded only until {loaded}: "
            f"run `regulars run --to {event.end}` first"
        )
    planned = goals is not None and not goals.is_empty()
    title = f"Event {event.label}: " + (
        "results and review" if planned else "baseline, goals, targets, results, review"
    )
    config = report_config(f"{settings.id}__reports__event_review", language=language)
    job = REVIEW_JOB if planned else CAMPAIGNS_JOB
    steps = [(title, job, {"dagster/partition": event_id}, config)]
    instance = dagster_instance()
    return finish(instance, run_steps(settings, build_definitions(settings), instance, steps, echo), echo)


def run_steps(
    settings: ShopSettings,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    steps: list[tuple],
    echo=click.echo,
    first_number: int = 1,
) -> list[str] | None:
    """Execute (title, job, tags, run config) steps of the shop's jobs in order in process; stop at the first
    failure. Numbers them from `first_number`. Returns the reports written, None on a failure."""
    for line in clean_up_after_crashes(instance):
        echo(line)
    reports = []
    for number, (title, job, tags, run_config) in enumerate(steps, first_number):
        echo(f"[{number}] {title} ...")
        started = time.monotonic()
        run_id = str(uuid.uuid4())
        with heartbeat(title.split(":")[0], waiting=partial(waiting_for, instance, run_id, settings.pool)):
            result = defs.resolve_job_def(job_name(settings, job)).execute_in_process(
                instance=instance,
                run_id=run_id,
                tags=tags | process_tags(),
                raise_on_error=False,
                run_config=run_config | _quiet_logs(),
            )
        echo(
            f"      {'done' if result.success else 'FAILED'} in {time.monotonic() - started:.1f}s"
            f" (run {result.run_id[:8]})"
        )
        if not result.success:
            echo(_failure(result), err=True)
            return None
        # A run over many days records one materialization per day; its metadata covers the run.
        latest = {
            event.asset_key: event.materialization.metadata for event in result.get_asset_materialization_events()
        }
        for key, metadata in latest.items():
            echo(_summary_line(key, metadata))
        for check in result.get_asset_check_evaluations():
            if not check.passed:  # a failed blocking check would have failed the run
                echo(_warning_line(check))
        reports.extend(v.value for m in latest.values() for k, v in m.items() if k == "path")
    return reports


def finish(instance: dg.DagsterInstance, reports: list[str] | None, echo=click.echo) -> bool:
    """The closing lines of a successful command: where its runs and reports are. Whether it succeeded."""
    if reports is None:
        return False
    echo(f"Dagster runs are in {instance.root_directory}: open them with `dagster dev`.")
    for path in reports:
        echo(f"Report: {path}")
    return True


def _quiet_logs() -> dict:
    # Failures are reported below from the run's events; Dagster's own console log stays quiet.
    return {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _plain(metadata: dict) -> dict:
    """The metadata values a terminal line can show (not tables, JSON or empty text)."""
    return {
        k: v.value
        for k, v in metadata.items()
        if not isinstance(v, dg.MarkdownMetadataValue | dg.JsonMetadataValue) and v.value != ""
    }


def _in_words(values: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())


def _summary_line(key: dg.AssetKey, metadata: dict) -> str:
    shown = _plain(metadata)
    shown.pop("window", None)
    rows = shown.pop("rows", shown.pop("dagster/row_count", None))
    extra = _in_words(shown)
    counts = [v.value for v in metadata.values() if isinstance(v, dg.JsonMetadataValue) and _counts(v.value)]
    if counts:
        extra += " (" + "; ".join(", ".join(f"{k} {n}" for k, n in c.items()) for c in counts) + ")"
    count = "" if rows is None else f"{rows} rows"
    table = "/".join(key.path[1:])  # without the shop's prefix: the run is the shop's
    return f"      {table:<30} {count:>14}  {extra}".rstrip()


def _counts(value) -> bool:
    """Whether a JSON metadata value is counts by name (classes, reasons ...), which a summary line lists."""
    return bool(value) and isinstance(value, dict) and all(isinstance(n, int | float) for n in value.values())


def _warning_line(check: dg.AssetCheckEvaluation) -> str:
    table = "/".join(check.asset_key.path[1:])
    return f"      warning: {table} {check.check_name}: {_in_words(_plain(check.metadata))}"


CLASS_PREFIX = re.compile(r"^[\w.]+(Error|Exception|Failure): ")  # 'dagster._core....Failure: ' before a message


def _failure(result) -> str:
    """What went wrong, in words: failed blocking checks with their summaries, else the step's error."""
    failed_checks = [
        check for check in result.get_asset_check_evaluations()
        if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    ]  # fmt: skip
    if failed_checks:
        lines = [
            f"  {c.asset_key.to_user_string()} {c.check_name}: "
            f"{getattr(c.metadata.get('summary'), 'value', 'see its metadata')}"
            for c in failed_checks
        ]
        return "error: data failed a blocking check, so nothing after it ran:\n" + "\n".join(lines)
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None and error.cls_name in ("DagsterExecutionStepExecutionError",):
                error = error.cause
            return "error: " + CLASS_PREFIX.sub("", error.message.strip())
    return "error: the run failed (see `dagster dev` for its logs)"


def _with_config(config: str | None, echo=click.echo):
    """`echo`, with the `--config` the user gave added to every command it suggests."""

    def echo_with_config(message: str = "", **kwargs) -> None:
        echo(with_config(message, config), **kwargs)

    return echo_with_config


def with_config(message: str, config: str | None) -> str:
    """A suggested `regulars run ...` or `regulars report ...` with the user's `--config`."""
    return re.sub(r"\bregulars (run|report)\b", rf"\g<0> --config {config}", message) if config else message


def _check_config(config: str | None) -> ShopSettings:
    try:
        return load_settings(config)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


LANGUAGE = click.option(
    "--language", type=click.Choice(["en", "zh"]), help="Language of the reports (default: reports.language)."
)


@click.group(cls=_Commands)
def main() -> None:
    """regulars: shop orders into customer retention work."""
    warnings.filterwarnings("ignore", category=BetaWarning)


@main.command()
@click.option(
    "--config", type=click.Path(dir_okay=False), help="A shop's settings file (default: REGULARS_CONFIG or shop.yaml)."
)
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day (default: history_start).")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: history_end or yesterday).")
@LANGUAGE
def run(config: str | None, first: datetime | None, last: datetime | None, language: str | None) -> None:
    """Materialize everything for a range of days."""
    settings = _check_config(config)
    register_shop(config)
    default_first, default_last = default_range(settings)
    try:
        ok = run_range(settings, first.date() if first else default_first, last.date() if last else default_last,
                       echo=_with_config(config), language=language)  # fmt: skip
    except MalformedExportError as exc:
        raise click.ClickException(with_config(str(exc), config)) from None
    sys.exit(0 if ok else 1)


@main.command()
@click.argument("event_id", metavar="EVENT")
@click.option(
    "--config", type=click.Path(dir_okay=False), help="A shop's settings file (default: REGULARS_CONFIG or shop.yaml)."
)
@LANGUAGE
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="overview: first day of the period.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="overview: last day (default: the as-of date).")
def report(
    event_id: str, config: str | None, language: str | None, first: datetime | None, last: datetime | None
) -> None:
    """Render the post-promotion review of EVENT (an event id such as double11-2025), or with EVENT `overview`
    the shop overview for a period (default: the 12 months to the customers' as-of date)."""
    try:
        settings, echo = _check_config(config), _with_config(config)
        if event_id == "overview":
            ok = run_overview(settings, first and first.date(), last and last.date(), language, echo=echo)
        elif first or last:
            raise click.UsageError("--from and --to are for `regulars report overview`")
        else:
            ok = run_event_review(settings, event_id, echo=echo, language=language)
    except click.ClickException as exc:  # keeps its kind (and exit code), with the user's --config
        exc.message = with_config(exc.message, config)
        raise
    sys.exit(0 if ok else 1)


@main.command()
@LANGUAGE
def demo(language: str | None) -> None:
    """Generate the demo shop and run everything on it."""
    settings = _check_config(None)
    sys.exit(0 if run_range(settings, *default_range(settings), language=language) else 1)


if __name__ == "__main__":
    main()
