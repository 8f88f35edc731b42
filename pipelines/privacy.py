"""What the run log, the UI's previews and the reports show of a person: ids and contact details
masked, as phone numbers are shown in China."""

import re

PERSONAL_COLUMNS = frozenset({"customer_id"})
EMAIL = re.compile(r"([^@\s|]+)@([\w.-]+)")
PHONE = re.compile(r"(?<![\w-])\+?\d{11,15}(?![\w-])")


def mask(customer_id: str) -> str:
    """'C0001234' -> '****1234', '12346' -> '***46': the end of an id, where ids differ, and at most
    half of it, as phone numbers are shown in China ('138****5678' keeps four digits)."""
    text = str(customer_id)
    shown = min(4, len(text) // 2)
    return "*" * (len(text) - shown) + text[len(text) - shown :]


def masked_text(text: str) -> str:
    """Free text with every email address's name and every phone number masked."""
    text = EMAIL.sub(lambda match: f"{mask(match.group(1))}@{match.group(2)}", text)
    return PHONE.sub(lambda match: mask(match.group(0)), text)


def shown(column: str, value) -> str:
    """A value as a preview may show it: a person's id masked, contact details in any other text too."""
    if value is None:
        return ""
    return mask(value) if column in PERSONAL_COLUMNS else masked_text(str(value))
