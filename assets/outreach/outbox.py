"""The outbox: lists for whoever sends the messages (a CRM or SMS tool, a marketer with a spreadsheet). Every
outbox file is written by `write_list`, which lets out only the rows that pass the gate (`assets.outreach.gate`),
with headers and values in the shop's outreach language."""

from pathlib import Path

import polars as pl

from assets.outreach.gate import GateRules, gate
from pipelines.spreadsheets import write_spreadsheet_csv
from reports.translations import (
    CHANNEL_NAMES,
    CLASS_NAMES,
    CONTACT_REASONS,
    OFFER_NAMES,
    OUTBOX_COLUMNS,
    STAGE_NAMES,
    TEXT,
)


def value_names(language: str, audiences: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Column -> code -> what a reader of `language` is shown; codes not named are shown as written.
    `audiences`: the shop's own audiences' labels (settings: audiences)."""
    if language not in OUTBOX_COLUMNS:
        return {}
    text, classes = TEXT[language], CLASS_NAMES[language]
    built_in = classes | {name: text[f"audience_{name}"] for name in ("engaged", "missed", "new_buyers")}
    return {
        "rfm_class": classes, "audience": built_in | (audiences or {}), "stage": STAGE_NAMES[language],
        "phase": {p: text[f"phase_{p}"] for p in ("build_up", "warm_up", "sprint", "after_glow")},
        "channel": CHANNEL_NAMES[language], "reason": CONTACT_REASONS[language], "offer_kind": OFFER_NAMES[language],
    }  # fmt: skip


def for_people(rows: pl.DataFrame, language: str, audiences: dict[str, str] | None = None) -> pl.DataFrame:
    """A list as its readers see it: coded values and headers in `language` where the outbox has names for it."""
    names = value_names(language, audiences)
    named = rows.with_columns(pl.col(c).replace(names[c]) for c in rows.columns if c in names)
    return named.rename(OUTBOX_COLUMNS.get(language, {}), strict=False)


def write_list(
    rows: pl.DataFrame, rules: GateRules, path: Path, day: str, language: str, parquet: bool = False,
    audiences: dict[str, str] | None = None,
):  # fmt: skip
    """The rows of `rows` that pass the gate (`day`: the column of each row's contact day), for people in
    `language` (`audiences`: the labels of the shop's own), as a spreadsheet-safe CSV at `path` and, with
    `parquet`, a Parquet copy with the same cells. Returns the rows written, as the warehouse has them."""
    passed = gate(rows, rules, day)
    people = for_people(passed, language, audiences)
    write_spreadsheet_csv(people, path, path.with_suffix(".parquet") if parquet else None)
    return passed
