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

# Chinese New Year (Beijing time), for the New Year goods festival (年货节), which ends shortly before it: the
# published dates (Hong Kong Observatory's Gregorian-lunar tables, Purple Mountain Observatory's almanac), which
# tests/test_campaigns.py checks against new moons it computes itself. No library the project depends on has them.
LUNAR_NEW_YEAR = {
    2000: date(2000, 2, 5), 2001: date(2001, 1, 24), 2002: date(2002, 2, 12), 2003: date(2003, 2, 1),
    2004: date(2004, 1, 22), 2005: date(2005, 2, 9), 2006: date(2006, 1, 29), 2007: date(2007, 2, 18),
    2008: date(2008, 2, 7), 2009: date(2009, 1, 26), 2010: date(2010, 2, 14), 2011: date(2011, 2, 3),
    2012: date(2012, 1, 23), 2013: date(2013, 2, 10), 2014: date(2014, 1, 31), 2015: date(2015, 2, 19),
    2016: date(2016, 2, 8), 2017: date(2017, 1, 28), 2018: date(2018, 2, 16),
    2019: date(2019, 2, 5), 2020: date(2020, 1, 25), 2021: date(2021, 2, 12), 2022: date(2022, 2, 1),
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
    2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13), 2030: date(2030, 2, 3),
    2031: date(2031, 1, 23), 2032: date(2032, 2, 11), 2033: date(2033, 1, 31), 2034: date(2034, 2, 19),
    2035: date(2035, 2, 8), 2036: date(2036, 1, 28), 2037: date(2037, 2, 15), 2038: date(2038, 2, 4),
    2039: date(2039, 1, 24), 2040: date(2040, 2, 12), 2041: date(2041, 2, 1), 2042: date(2042, 1, 22),
    2043: date(2043, 2, 10), 2044: date(2044, 1, 30), 2045: date(2045, 2, 17), 2046: date(2046, 2, 6),
    2047: date(2047, 1, 26), 2048: date(2048, 2, 14), 2049: date(2049, 2, 2), 2050: date(2050, 1, 23),
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
    except KeyError:  # only the New Year's dates come from a table
        raise CalendarError(
            f"preset {kind!r} has no dates for {year}: the Chinese New Year is known for {min(LUNAR_NEW_YEAR)} to "
            f"{max(LUNAR_NEW_YEAR)}; add the year's festival under events.custom, or leave {kind!r} out of "
            "events.presets"
        ) from None
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
