"""What runs when: the one sequence that the daemon (schedule and sensor) and the `regulars` CLI both follow.

The daily run on the morning of day D loads D-1 and everything downstream of it. A sales event is planned in
steps, each as soon as the orders it needs are loaded:

- `build_up`: the baseline (customers as of the event's first day) and the goals, once that day is loaded;
- each phase with a target list (`events.plan`): once the eve of its first contact day is loaded. The morning
  run that loads the eve is followed by the plan, so the list is in the warehouse and the outbox on the
  morning of its first day;
- `review`: results and the review, once the after-glow's last day is loaded.

The state comes from the Dagster instance (which days of orders are materialized, which step each event's
goals were planned through, which reviews exist), so runs started by the daemon, the UI or the CLI all count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import dagster as dg

from pipelines.calendar import Event
from pipelines.settings import ShopSettings

LIST_PHASES = ("warm_up", "sprint", "after_glow")  # the phases that can have target lists (campaigns.targets)
BASELINE, REVIEW = "build_up", "review"
PLANNED_THROUGH = "planned_through"  # metadata of campaigns/goals: the step an event's plan covers


def plan_steps(settings: ShopSettings) -> list[str]:
    """An event's planning steps: the baseline, then each phase with a target list."""
    return [BASELINE, *(phase for phase in LIST_PHASES if settings.events.plan.get(phase))]


def needs_loaded(event: Event, step: str) -> date:
    """The last day whose orders a step needs."""
    if step == REVIEW:
        return event.end
    if step == BASELINE:
        return event.start
    return max(event.phases[step][0] - timedelta(days=1), event.start)


def planned_step(settings: ShopSettings, event: Event, loaded_until: date | None) -> str | None:
    """The latest planning step whose orders are loaded, or None before the event's first day is."""
    ready = [s for s in plan_steps(settings) if loaded_until is not None and needs_loaded(event, s) <= loaded_until]
    return ready[-1] if ready else None


def reviews_alone(settings: ShopSettings, step: str, planned: str | None) -> bool:
    """Whether a step is the review of an event planned through its last step already (its results and review
    alone), not the whole event's run (plan, then results and review)."""
    return step == REVIEW and planned == plan_steps(settings)[-1]


def due_steps(
    settings: ShopSettings, since: date | None, loaded_until: date | None, planned: dict[str, str], reviewed: set[str]
) -> list[tuple[Event, str]]:
    """The step each event needs now: its review once it is over, else its latest planning step, unless that
    is done already. Events over before `since` (the first day loaded) are left alone: nothing of them is loaded."""
    if since is None or loaded_until is None:
        return []
    due = []
    for event in settings.calendar():
        if event.end < since or event.id in reviewed:
            continue
        step = REVIEW if event.end <= loaded_until else planned_step(settings, event, loaded_until)
        if step is not None and step != planned.get(event.id):
            due.append((event, step))
    return due


def days_loaded(instance: dg.DagsterInstance, settings: ShopSettings, orders_key: dg.AssetKey) -> list[date]:
    """The days whose orders are materialized, in order."""
    return sorted(date.fromisoformat(day) for day in instance.get_materialized_partitions(orders_key))


def planned_through(instance: dg.DagsterInstance, goals_key: dg.AssetKey, events: Iterable[Event]) -> dict[str, str]:
    """Event id -> the step its latest plan covered (metadata of its latest campaigns/goals materialization)."""
    planned = {}
    for event in events:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=goals_key, asset_partitions=[event.id]), limit=1
        ).records
        if records:
            step = records[0].asset_materialization.metadata.get(PLANNED_THROUGH)
            planned[event.id] = step.value if step is not None else REVIEW
    return planned
