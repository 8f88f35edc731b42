"""docs/configuration.md is what the settings models generate (refresh:
`.venv/bin/python -m pipelines.settings_reference > docs/configuration.md`)."""

import difflib

from pipelines.settings_reference import REFERENCE, reference


def test_the_committed_reference_is_the_generated_one():
    diff = difflib.unified_diff(
        REFERENCE.read_text(encoding="utf-8").splitlines(), reference().splitlines(), "committed", "generated",
        lineterm="", n=0,
    )  # fmt: skip
    changed = "\n".join(diff)
    assert not changed, "refresh: .venv/bin/python -m pipelines.settings_reference > docs/configuration.md\n" + changed


def test_a_setting_shows_its_type_default_limits_and_comment():
    # operations.schedule_hour, as pipelines/settings.py writes it: int, 6, Field(6, ge=0, le=23), and its comment
    row = next(line for line in reference().splitlines() if line.startswith("| `schedule_hour` |"))
    assert row == "| `schedule_hour` | `int` | `6` | ≥ 0, ≤ 23 | the daily run, in the shop's zone, for yesterday |"
    # a description given as Field(description=...) wins: rules.max_amount
    row = next(line for line in reference().splitlines() if line.startswith("| `max_amount` |"))
    assert row.endswith("| a row worth more than this (either sign) is an outlier |")
