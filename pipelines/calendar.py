"""Sales events and their four phases: build-up, warm-up, sprint, after-glow.

Presets give each event's sprint by year and default phase lengths; a shop adds its own
events and overrides any phase. Phases are consecutive days: build-up, then warm-up, then
the sprint, then the after-glow; `check` refuses phases that overlap or run backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

PHASES = ("build_up", "warm_up", "sprint", "after_glow")

# Chinese New Year, for the New Year goods festival (年货节), which ends shortly before it.
LUNAR_NEW_YEAR = {
    2019: date(2019, 2, 5), 2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1),
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
    2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13), 2030: date(2030, 2, 3),
}  # fmt: skip


def _thanksgiving(year: int) -> date:
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


def _fixed(month: int, day: int, days: int = 1):
    return lambda year: (date(year, month, day) - timedelta(days=days - 1), date(year, month, day))


# kind: (label, sprint (first, last) by year, default days of build-up, warm-up, after-glow)
PRESETS = {
    "618": ("618", _fixed(6, 18), (21, 10, 7)),
    "double11": ("Double 11 双十一", _fixed(11, 11), (30, 22, 7)),
    "double12": ("Double 12 双十二", _fixed(12, 12), (16, 7, 7)),
    "newyear": ("New Year goods festival 年货节",
                lambda y: (LUNAR_NEW_YEAR[y] - timedelta(days=21), LUNAR_NEW_YEAR[y] - timedelta(days=12)), (14, 7, 7)),
    "black_friday": ("Black Friday", lambda y: (_thanksgiving(y) + timedelta(days=1),) * 2, (14, 7, 2)),
    "cyber_monday": ("Cyber Monday", lambda y: (_thanksgiving(y) + timedelta(days=4),) * 2, (7, 2, 3)),
    "christmas": ("Christmas", _fixed(12, 24, days=5), (21, 14, 7)),
}  # fmt: skip


class CalendarError(ValueError):
    """An event whose phases cannot be used."""


@dataclass(frozen=True)
class Event:
    id: str  # e.g. double11-2024
    kind: str  # events of one kind are comparable year to year
    label: str
    phases: dict[str, tuple[date, date]]  # phase -> (first day, last day)

    @property
    def start(self) -> date:
        return self.phases["build_up"][0]

    @property
    def end(self) -> date:
        return self.phases["after_glow"][1]

    @property
    def sprint(self) -> tuple[date, date]:
        return self.phases["sprint"]


def around(sprint: tuple[date, date], build_up: int, warm_up: int, after_glow: int) -> dict[str, tuple[date, date]]:
    """Consecutive phases around a sprint, with the given lengths in days."""
    first, last = sprint
    warm_up_first = first - timedelta(days=warm_up)
    return {
        "build_up": (warm_up_first - timedelta(days=build_up), warm_up_first - timedelta(days=1)),
        "warm_up": (warm_up_first, first - timedelta(days=1)),
        "sprint": (first, last),
        "after_glow": (last + timedelta(days=1), last + timedelta(days=after_glow)),
    }


def preset(kind: str, year: int) -> Event:
    if kind not in PRESETS:
        raise CalendarError(f"unknown preset {kind!r}; known: {', '.join(PRESETS)}")
    label, sprint, (build_up, warm_up, after_glow) = PRESETS[kind]
    try:
        days = sprint(year)
    except KeyError:
        raise CalendarError(f"preset {kind!r} has no dates for {year}") from None
    return Event(f"{kind}-{year}", kind, f"{label} {year}", around(days, build_up, warm_up, after_glow))


def check(event: Event) -> Event:
    """Refuse phases that are missing, run backwards or overlap."""
    missing = [p for p in PHASES if p not in event.phases]
    if missing:
        raise CalendarError(f"event {event.id}: missing phase {missing[0]}")
    previous_end = None
    for name in PHASES:
        first, last = event.phases[name]
        if last < first:
            raise CalendarError(f"event {event.id}: {name} ends ({last}) before it starts ({first})")
        if previous_end is not None and first <= previous_end:
            raise CalendarError(
                f"event {event.id}: {name} starts {first}, before the phase before it ends ({previous_end})"
            )
        previous_end = last
    return event


def with_overrides(event: Event, phases: dict[str, tuple[date, date]]) -> Event:
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise CalendarError(f"event {event.id}: unknown phase {sorted(unknown)[0]}; phases are {', '.join(PHASES)}")
    return check(Event(event.id, event.kind, event.label, event.phases | phases))


def comparable(event: Event, events: list[Event], usable: Callable[[Event], bool] = lambda e: True) -> Event | None:
    """The event to set goals from: the latest earlier one of the same kind that is `usable` (has orders)."""
    earlier = sorted((e for e in events if e.kind == event.kind and e.sprint[1] < event.sprint[0]),
                     key=lambda e: e.sprint[0], reverse=True)  # fmt: skip
    return next((e for e in earlier if usable(e)), None)


def passed_over(event: Event, events: list[Event], chosen: Event | None) -> list[Event]:
    """The earlier events of the kind more recent than the comparable one: not usable (no orders)."""
    since = chosen.sprint[1] if chosen else date.min
    return [e for e in events if e.kind == event.kind and since < e.sprint[0] and e.sprint[1] < event.sprint[0]]
