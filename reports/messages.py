"""Customer messages: one Jinja macro per audience (an RFM class, or a phase and audience),
per kind of message and language.

`templates/messages/<kind>.<language>.j2` defines the macros; an audience without one is an
error, never a blank or a template key sent to a customer.
"""

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    # Plain text for SMS and chat apps: nothing to escape, every variable must exist.
    return Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)


def render_message(kind: str, language: str, audience: str, **values) -> str:
    name = f"messages/{kind}.{language}.j2"
    macro = getattr(_environment().get_template(name).module, audience, None)
    if macro is None:
        raise KeyError(f"{name} has no message for {audience!r}")
    return " ".join(str(macro(**values)).split())
