"""Customer messages: one Jinja macro per audience (an RFM class, or a phase and audience),
per kind of message and language.

`templates/messages/<kind>.<language>.j2` defines the macros; an audience without one is an
error, never a blank or a template key sent to a customer. A message reads as a sentence in its
language: a category or date it has no name for is left out (each macro has words for that case),
never shown as a code.
"""

import re
from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from pipelines.calendar import Event
from pipelines.settings import Tier
from reports.translations import CATEGORY_NAMES, EVENT_NAMES

TEMPLATES = Path(__file__).parent / "templates"
CAMPAIGN_PHASES = ("warm_up", "sprint", "after_glow")  # the phases with lists (pipelines.calendar.PHASES)
CHINESE = re.compile(r"[\u4e00-\u9fff]")


@cache
def _environment() -> Environment:
    # Plain text for SMS and chat apps: nothing to escape, every variable must exist.
    return Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)


def render_message(kind: str, language: str, audience: str, member: Tier | None = None, **values) -> str:
    """A message, a date among `values` written as the language writes dates; with `member`, the customer's
    member tier, closed by a sentence naming the tier and its benefit (`messages/tier.<language>.j2`)."""
    name = f"messages/{kind}.{language}.j2"
    module = _environment().get_template(name).module
    macro = getattr(module, audience, None)
    if macro is None:  # an audience a campaign's phase has no words of its own for gets the phase's message
        phase = next((p for p in CAMPAIGN_PHASES if audience.startswith(f"{p}_")), None)
        macro = getattr(module, phase, None) if phase else None
    if macro is None:
        raise KeyError(f"{name} has no message for {audience!r}")
    values = {key: spoken_date(value, language) if isinstance(value, date) else value for key, value in values.items()}
    text = " ".join(str(macro(**values)).split())
    if member is None:
        return text
    words = _environment().get_template(f"messages/tier.{language}.j2").module
    benefit = getattr(member.benefit, language) if member.benefit else None
    closing = " ".join(str(words.member(tier=getattr(member.name, language), benefit=benefit)).split())
    return text + ("" if language == "zh" else " ") + closing  # Chinese sentences follow without a space


def spoken_date(day: date, language: str) -> str:
    return f"{day.month}月{day.day}日" if language == "zh" else f"{day.day} {day:%B}"


def spoken_discount(discount: float, language: str) -> str:
    """A discount as the language says it: 20% off is 8折 in Chinese (the share paid, in tenths), 5% off 95折."""
    if language != "zh":
        return f"{round(discount * 100)}% off"
    paid = round((1 - discount) * 100)
    return f"{paid // 10 if paid % 10 == 0 else paid}折"


def category_name(category: str | None, language: str, names: Mapping[str, str]) -> str | None:
    """A category as a message in `language` names it: the shop's name for it (`names`, outreach.category_names),
    else the built-in name of a synthetic shop's category, else as the export writes it if that reads in the
    language (a Chinese message takes only a name with Chinese characters); None: the message goes without."""
    if not category:
        return None
    name = names.get(category) or CATEGORY_NAMES[language].get(category)
    if name:
        return name
    return category if language != "zh" or CHINESE.search(category) else None


def event_name(event: Event, language: str) -> str:
    """An event as a message in `language` names it: a preset kind by its name in the language (no year), a
    shop's own event by its label (events.custom's `label`, which a shop writes in its own language)."""
    return EVENT_NAMES[language].get(event.kind, event.label)
