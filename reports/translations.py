"""Every word a report shows, in each language it is offered in: one catalog per language,
reports/locales/<language>.yaml, a section in it per table below. A key missing from a language fails the render
(and a test), rather than showing the key to a reader."""

from pathlib import Path

import yaml

from pipelines.rfm_classes import CLASS_LABELS_ZH

LOCALES = Path(__file__).parent / "locales"
CATALOGS = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(LOCALES.glob("*.yaml"))}


def _section(name: str, defaults: dict[str, dict] | None = None) -> dict[str, dict]:
    """One section of every catalog that has it, by language (over `defaults`, by language, where given)."""
    defaults = defaults or {}
    return {language: defaults.get(language, {}) | words[name] for language, words in CATALOGS.items() if name in words}


TEXT = _section("text")
ACTIONS = _section("actions")
# the 中文 class names are those of pipelines/rfm_classes.py (the warehouse's rfm_class_zh) but where a catalog differs
CLASS_NAMES = _section("class_names", {"zh": CLASS_LABELS_ZH})
CHANNEL_NAMES = _section("channel_names")
OUTBOX_COLUMNS = _section("outbox_columns")
OFFER_NAMES = _section("offer_names")
STAGE_NAMES = _section("stage_names")
CONTACT_REASONS = _section("contact_reasons")
CATEGORY_NAMES = _section("category_names")
EVENT_NAMES = _section("event_names")
